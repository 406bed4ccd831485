# Killed runs and two runs at once (test_crash.py; issue 15, items 1 and 2):
# matchnet-colmap stopped at named points (apps/test_point.h) and killed
# there or at seeded times, resumed, its database checked and compared with
# an uninterrupted run's; two runs on one database, readers (and colmap
# database_merger, when installed) beside a run; matchnet-match,
# matchnet-stitch and matchnet-patchset killed before and after their
# renames. Debian's python3 with OpenCV and numpy drives them. Plain builds
# only: each test starts the programs some 80 times, too slow under the
# sanitizers.
if(MN_SANITIZE OR NOT MN_SYSTEM_PYTHON)
  return()
endif()
execute_process(COMMAND ${MN_SYSTEM_PYTHON} -c "import cv2, numpy" RESULT_VARIABLE mn_py_crash OUTPUT_QUIET ERROR_QUIET)
if(NOT mn_py_crash EQUAL 0)
  message(STATUS "matchnet: python3 without cv2/numpy; test_crash_* not registered")
  return()
endif()

if(TARGET matchnet-colmap)
  find_program(MN_COLMAP_EXECUTABLE colmap)
  set(mn_crash_colmap_args --colmap $<TARGET_FILE:matchnet-colmap>)
  if(MN_COLMAP_EXECUTABLE)
    list(APPEND mn_crash_colmap_args --colmap-exe ${MN_COLMAP_EXECUTABLE})
  endif()
  add_test(NAME test_crash_colmap
           COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_crash.py colmap ${mn_crash_colmap_args})
  set_tests_properties(test_crash_colmap PROPERTIES TIMEOUT 600)
endif()

if(TARGET matchnet-match AND TARGET matchnet-stitch AND TARGET matchnet-patchset)
  add_test(NAME test_crash_outputs
           COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_crash.py outputs
                   --match $<TARGET_FILE:matchnet-match> --stitch $<TARGET_FILE:matchnet-stitch>
                   --patchset $<TARGET_FILE:matchnet-patchset> --source-dir ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_crash_outputs PROPERTIES TIMEOUT 600)
endif()
