# Hardening tests: threads under load, numerical extremes, hostile inputs.
# Included from tests/CMakeLists.txt after mn_add_test() is defined.

mn_add_test(test_stress)   # 8 threads, one model, results bit-identical to one thread
mn_add_test(test_numeric)  # degenerate and extreme patches and descriptors

if(MN_BUILD_PLUGIN)
  # The C pipeline on hostile images, keypoints, empty sets and model
  # headers; PNGs written with zlib, independent of OpenCV's encoder.
  find_package(ZLIB REQUIRED)
  add_executable(test_hostile test_hostile.c)
  target_link_libraries(test_hostile PRIVATE matchnet_opencv ZLIB::ZLIB m)
  target_compile_definitions(test_hostile PRIVATE MN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME test_hostile COMMAND test_hostile)
  set_tests_properties(test_hostile PROPERTIES TIMEOUT 600)
  if(NOT MN_SANITIZE) # its alone-and-in-a-batch check in fp32 too (tests/CMakeLists.txt's _fp32 runs)
    add_test(NAME test_hostile_fp32 COMMAND test_hostile)
    set_tests_properties(test_hostile_fp32 PROPERTIES ENVIRONMENT "MN_PRECISION=fp32" TIMEOUT 600)
  endif()
endif()

if(TARGET matchnet-match)
  # matchnet-match on hostile files and unwritable outputs.
  add_test(NAME test_hostile_cli
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_hostile.sh $<TARGET_FILE:matchnet-match> ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_hostile_cli PROPERTIES TIMEOUT 600)
endif()
