# Tests of the OpenCV plugin's C API (matchnet/opencv.h), of matchnet-match's
# JSON writer and of the matchnet-match command line. Included from
# tests/CMakeLists.txt when MN_BUILD_PLUGIN is on.

# The test writes its JPEG with TurboJPEG's encoder, independent of the
# plugin's decoding path.
find_package(PkgConfig REQUIRED)
pkg_check_modules(MN_TEST_TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)

# Linked against the shared libraries only: one copy of the library's
# thread-local error message.
add_executable(test_plugin_c test_plugin_c.c)
target_link_libraries(test_plugin_c PRIVATE matchnet_opencv PkgConfig::MN_TEST_TURBOJPEG m)
add_test(NAME test_plugin_c COMMAND test_plugin_c)
set_tests_properties(test_plugin_c PROPERTIES TIMEOUT 300)

# The pixel limit from every format's header, mn_image_probe, MATCHNET_MAX_IMAGE_PIXELS.
add_executable(test_image_limits test_image_limits.cpp)
target_link_libraries(test_image_limits PRIVATE matchnet_opencv)
if(TARGET matchnet-match AND TARGET matchnet-stitch AND TARGET matchnet-colmap)
  add_test(NAME test_image_limits COMMAND test_image_limits $<TARGET_FILE:matchnet-match>
           $<TARGET_FILE:matchnet-stitch> $<TARGET_FILE:matchnet-colmap>)
else()
  add_test(NAME test_image_limits COMMAND test_image_limits)
endif()
# Drawing (mn_matches_draw_with): cap, visibility, colours, counts, failures.
add_executable(test_plugin_draw test_plugin_draw.c)
target_link_libraries(test_plugin_draw PRIVATE matchnet_opencv m)
add_test(NAME test_plugin_draw COMMAND test_plugin_draw)
set_tests_properties(test_plugin_draw PROPERTIES TIMEOUT 300)

add_executable(test_match_json test_match_json.c ${PROJECT_SOURCE_DIR}/apps/match_json.c)
target_include_directories(test_match_json PRIVATE ${PROJECT_SOURCE_DIR}/apps ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_match_json PRIVATE m)
add_test(NAME test_match_json COMMAND test_match_json)

if(TARGET matchnet-match)
  add_test(NAME test_cli
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.sh $<TARGET_FILE:matchnet-match> ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_cli PROPERTIES TIMEOUT 600)
endif()

# --affine against similarity patches on tilted views of the bundled photograph
# (Debian's python3 with OpenCV and numpy renders them and counts correct matches).
# COLMAP's SIFT with and without its affine shapes, the table's reference
# columns, are not checked and take most of the time: scripts/test_long.sh
# prints them.
if(TARGET matchnet-match AND MN_SYSTEM_PYTHON)
  execute_process(COMMAND ${MN_SYSTEM_PYTHON} -c "import cv2, numpy" RESULT_VARIABLE mn_py_cv_views
                  OUTPUT_QUIET ERROR_QUIET)
  if(mn_py_cv_views EQUAL 0)
    add_test(NAME test_affine_views
             COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_affine_views.py
                     $<TARGET_FILE:matchnet-match> ${PROJECT_SOURCE_DIR})
    set_tests_properties(test_affine_views PROPERTIES TIMEOUT 600)
  endif()
endif()

# The C-only sample, on the bundled pair: it must find homography inliers.
if(TARGET match_pair)
  add_test(NAME test_sample_match_pair
           COMMAND match_pair ${PROJECT_SOURCE_DIR}/samples/data/box.png ${PROJECT_SOURCE_DIR}/samples/data/box_in_scene.png)
  set_tests_properties(test_sample_match_pair PROPERTIES PASS_REGULAR_EXPRESSION "matches, [1-9][0-9]+ homography inliers")
endif()
