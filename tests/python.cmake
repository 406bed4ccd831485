# Tests of the Python package matchnet (python/matchnet) as CMake generates
# it into the build tree, run by Debian's python3 with numpy and OpenCV
# (PYTHONPATH=BUILD_DIR/python, the path README documents). Included from
# tests/CMakeLists.txt when the plugin and matchnet-match are built.
# Not in sanitizer builds: a plain python3 cannot load a sanitizer-
# instrumented library.
if(NOT (MN_SYSTEM_PYTHON AND MN_BUILD_PYTHON AND TARGET matchnet-match) OR MN_SANITIZE)
  return()
endif()
execute_process(COMMAND ${MN_SYSTEM_PYTHON} -c "import cv2, numpy" RESULT_VARIABLE mn_py_cv2 OUTPUT_QUIET ERROR_QUIET)
if(NOT mn_py_cv2 EQUAL 0)
  message(STATUS "matchnet: python3 without cv2/numpy; test_python not registered")
  return()
endif()

# The C API path the package is compared with (keypoints and descriptors).
add_executable(python_reference python_reference.c)
target_link_libraries(python_reference PRIVATE matchnet_opencv)

set(mn_py_test_args ${CMAKE_CURRENT_SOURCE_DIR}/test_python.py --source-dir ${PROJECT_SOURCE_DIR}
    --build-dir ${PROJECT_BINARY_DIR} --match $<TARGET_FILE:matchnet-match> --reference $<TARGET_FILE:python_reference>)
add_test(NAME test_python COMMAND ${MN_SYSTEM_PYTHON} ${mn_py_test_args})
# `cmake --install` to a fresh prefix and import from there (needs the whole tree built).
add_test(NAME test_python_install COMMAND ${MN_SYSTEM_PYTHON} ${mn_py_test_args} --install)
set_tests_properties(test_python test_python_install PROPERTIES
                     ENVIRONMENT "PYTHONPATH=${PROJECT_BINARY_DIR}/python" TIMEOUT 600)

# Full file systems (a tmpfs in a private mount namespace where allowed, and
# RLIMIT_FSIZE everywhere) and a 1 GiB address space, for the programs
# (issue 15's resources); plain builds only, as the sanitizers reserve more.
if(TARGET matchnet-stitch AND TARGET matchnet-colmap AND TARGET matchnet-patchset)
  add_test(NAME test_resources COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_resources.py
           --match $<TARGET_FILE:matchnet-match> --stitch $<TARGET_FILE:matchnet-stitch>
           --colmap $<TARGET_FILE:matchnet-colmap> --patchset $<TARGET_FILE:matchnet-patchset>
           --source-dir ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_resources PROPERTIES TIMEOUT 600)
endif()

# matchnet.hloc: hloc's feature and match files, read back with h5py the way
# hloc's readers index them (hloc itself is not in Debian).
execute_process(COMMAND ${MN_SYSTEM_PYTHON} -c "import h5py" RESULT_VARIABLE mn_py_h5py OUTPUT_QUIET ERROR_QUIET)
if(mn_py_h5py EQUAL 0)
  add_test(NAME test_hloc COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_hloc.py
           --source-dir ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_hloc PROPERTIES ENVIRONMENT "PYTHONPATH=${PROJECT_BINARY_DIR}/python" TIMEOUT 600)
else()
  message(STATUS "matchnet: python3 without h5py (python3-h5py); test_hloc not registered")
endif()
