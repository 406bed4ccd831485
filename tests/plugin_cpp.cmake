# Tests of the OpenCV plugin's C++ classes (matchnet/opencv.hpp), of the
# installed package (find_package and pkg-config) and of the samples.
# Included from tests/CMakeLists.txt when MN_BUILD_PLUGIN is on. Images
# come from samples/data (OpenCV's box.png and box_in_scene.png).

# Linked against the shared libraries only: one copy of the library's
# thread-local error message.
function(mn_add_plugin_cpp_test name)
  add_executable(${name} ${name}.cpp)
  target_link_libraries(${name} PRIVATE matchnet_opencv)
  target_compile_definitions(${name} PRIVATE MN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endfunction()

mn_add_plugin_cpp_test(test_plugin_cpp_feature2d)   # matchnet::MatchNet
mn_add_plugin_cpp_test(test_plugin_cpp_matcher)     # matchnet::MatchNetMatcher
mn_add_plugin_cpp_test(test_plugin_cpp_stitch)      # matchnet::MatchNetFeaturesMatcher, matchnet-stitch

# matchnet-stitch's JSON summary on failure (no model needed).
if(TARGET matchnet-stitch)
  add_test(NAME test_plugin_cpp_stitch_cli
           COMMAND matchnet-stitch -o ${CMAKE_CURRENT_BINARY_DIR}/never.jpg ${CMAKE_CURRENT_BINARY_DIR}/missing.png)
  set_tests_properties(test_plugin_cpp_stitch_cli PROPERTIES
    PASS_REGULAR_EXPRESSION "{\"status\": \"read_error\", \"images\": 1, \"kept\": 0, \"width\": 0, \"height\": 0}")
endif()

# find_package(matchnet) and pkg-config from an installed prefix: needs the
# whole tree built (it runs `cmake --install`), about 20 s.
# Not in sanitizer builds: the consumers are plain programs, and a plain
# program cannot load a sanitizer-instrumented library.
find_program(MN_PKG_CONFIG pkg-config)
if(MN_PKG_CONFIG AND NOT MN_SANITIZE)
  add_test(NAME test_plugin_cpp_package
           COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                   -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/package_check -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
                   -DC_COMPILER=${CMAKE_C_COMPILER} -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/package/package_check.cmake)
  set_tests_properties(test_plugin_cpp_package PROPERTIES TIMEOUT 300)
endif()
