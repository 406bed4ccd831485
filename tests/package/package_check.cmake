# Install a build tree into a fresh prefix and build consumers against it,
# once with find_package(matchnet COMPONENTS opencv) and once with
# pkg-config (matchnet, matchnet-opencv), then run them.
#
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DLIBDIR=lib
#         -DC_COMPILER=cc -DCXX_COMPILER=c++ -P package_check.cmake
cmake_minimum_required(VERSION 3.16)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(OUT "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# The installed libraries (a consumer built here has no RPATH to them).
# No MATCHNET_MODEL: the library finds share/matchnet beside its lib/.
set(env ${CMAKE_COMMAND} -E env
        LD_LIBRARY_PATH=${prefix}/${LIBDIR} PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig)

# find_package
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${env} ${WORK_DIR}/build/consumer_c)
message(STATUS "find_package, C: ${OUT}")
run(${env} ${WORK_DIR}/build/consumer_cpp)
message(STATUS "find_package, C++: ${OUT}")
if(NOT OUT MATCHES "Feature2D.MatchNet 256, masks")
  message(FATAL_ERROR "unexpected output of consumer_cpp: ${OUT}")
endif()

# pkg-config: the C program against matchnet-opencv (which requires matchnet).
run(${env} pkg-config --cflags --libs matchnet-opencv)
string(STRIP "${OUT}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${C_COMPILER} -DUSE_OPENCV_PLUGIN ${SOURCE_DIR}/tests/package/consumer.c -o ${WORK_DIR}/consumer_pc ${flags})
run(${env} ${WORK_DIR}/consumer_pc)
message(STATUS "pkg-config, C: ${OUT}")
if(NOT OUT MATCHES "descriptor 256, SIFT scale factor 6.75")
  message(FATAL_ERROR "unexpected output of consumer_pc: ${OUT}")
endif()
