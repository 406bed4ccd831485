# The kernels: the CPU probe and its table, the one BLAS file, the own
# product kernels and the blocked tower's layer kernels per instruction set.
# Included by the top-level CMakeLists.txt; sets MN_KERNEL_SOURCES and each
# file's instruction-set flags (the only place they are set: no
# -march=native, no per-function target attributes). A new instruction set
# adds its files here and its row to isa.c's table.
set(MN_KERNELS_DIR ${CMAKE_CURRENT_LIST_DIR})
set(MN_KERNEL_SOURCES
  ${MN_KERNELS_DIR}/cpu.c
  ${MN_KERNELS_DIR}/isa.c
  ${MN_KERNELS_DIR}/blas.c
  ${MN_KERNELS_DIR}/gemm.c
  ${MN_KERNELS_DIR}/gemm_drive.c
  ${MN_KERNELS_DIR}/gemm_generic.c
  ${MN_KERNELS_DIR}/blocked_generic.c)

set(MN_X86_KERNELS OFF)
set(MN_KERNEL_ISAS generic)
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  # The generic product kernel keeps one multiply and one add per term, in
  # order, in every lane and tail (the determinism rule, gemm.h). The
  # blocked kernels are written as a * b + c: let them contract to FMA.
  set_property(SOURCE ${MN_KERNELS_DIR}/gemm_generic.c APPEND PROPERTY COMPILE_OPTIONS "-ffp-contract=off")
  set_property(SOURCE ${MN_KERNELS_DIR}/blocked_generic.c APPEND PROPERTY COMPILE_OPTIONS "-ffp-contract=fast;-Wno-psabi")
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
    set(MN_X86_KERNELS ON)
    list(APPEND MN_KERNEL_ISAS avx2 avx512)
    list(APPEND MN_KERNEL_SOURCES
      ${MN_KERNELS_DIR}/gemm_avx2.c ${MN_KERNELS_DIR}/gemm_avx512.c
      ${MN_KERNELS_DIR}/blocked_avx2.c ${MN_KERNELS_DIR}/blocked_avx512.c)
    set_property(SOURCE ${MN_KERNELS_DIR}/gemm_avx2.c APPEND PROPERTY COMPILE_OPTIONS "-mavx2;-mfma")
    # Patch sampling: patch.c's values to the bit, so no contraction to FMA.
    list(APPEND MN_KERNEL_SOURCES ${MN_KERNELS_DIR}/sample_avx2.c)
    set_property(SOURCE ${MN_KERNELS_DIR}/sample_avx2.c APPEND PROPERTY COMPILE_OPTIONS
                 "-mavx2;-mfma;-ffp-contract=off")
    set_property(SOURCE ${MN_KERNELS_DIR}/gemm_avx512.c APPEND PROPERTY COMPILE_OPTIONS "-mavx512f;-mavx2;-mfma")
    # bfloat16 Winograd products (MN_PRECISION=bf16) where the compiler has AVX512-BF16.
    include(CheckCCompilerFlag)
    check_c_compiler_flag("-mavx512bf16" MN_CC_HAS_AVX512BF16)
    if(MN_CC_HAS_AVX512BF16)
      list(APPEND MN_KERNEL_ISAS avx512bf16)
      list(APPEND MN_KERNEL_SOURCES ${MN_KERNELS_DIR}/gemm_avx512bf16.c)
      set_property(SOURCE ${MN_KERNELS_DIR}/gemm_avx512bf16.c APPEND PROPERTY COMPILE_OPTIONS
                   "-mavx512f;-mavx512bw;-mavx512bf16;-mavx2;-mfma")
      set(MN_HAVE_BF16_KERNEL ON)
    endif()
    set_property(SOURCE ${MN_KERNELS_DIR}/blocked_avx2.c APPEND PROPERTY COMPILE_OPTIONS
                 "-mavx2;-mfma;-ffp-contract=fast;-Wno-psabi")
    set_property(SOURCE ${MN_KERNELS_DIR}/blocked_avx512.c APPEND PROPERTY COMPILE_OPTIONS
                 "-mavx512f;-mavx2;-mfma;-ffp-contract=fast;-Wno-psabi")
  endif()
endif()
