# Tests of matchnet-colmap: the COLMAP database it writes (test_colmap.c,
# SQLite C API, no colmap needed), the keypoint conversion from COLMAP's
# rows (test_colmap_keypoints.c), cameras and EXIF priors
# (test_colmap_cameras.py), retrieval and spatial pairs
# (test_colmap_retrieval.py) and, where colmap is installed, that
# samples/sfm.sh's path through colmap's verification and mapper
# registers the rendered views (test_colmap_mapper.sh), that
# --reuse-keypoints describes colmap feature_extractor's keypoints
# (test_colmap_reuse) and that the conversions and cameras agree with what
# colmap itself writes (the colmap parts of test_colmap_keypoints and
# test_colmap_cameras, which skip them without colmap).
if(TARGET matchnet-colmap)
  find_package(SQLite3 REQUIRED)  # imported targets are per directory
  add_executable(test_colmap test_colmap.c)
  target_link_libraries(test_colmap PRIVATE matchnet_opencv SQLite::SQLite3 m)
  add_test(NAME test_colmap COMMAND test_colmap $<TARGET_FILE:matchnet-colmap>)
  set_tests_properties(test_colmap PROPERTIES TIMEOUT 300)

  find_program(MN_COLMAP_EXECUTABLE colmap)
  if(MN_COLMAP_EXECUTABLE)
    set(mn_colmap_arg ${MN_COLMAP_EXECUTABLE})
  else()
    set(mn_colmap_arg "")
    message(STATUS "matchnet: colmap not found; test_colmap_mapper and test_colmap_reuse are not registered, "
                   "test_colmap_keypoints and test_colmap_cameras skip their comparisons with colmap")
  endif()

  # The conversion as matchnet-colmap does it: its own colmap_convert.c and
  # colmap_db.c, compiled in.
  add_executable(test_colmap_keypoints test_colmap_keypoints.c ${PROJECT_SOURCE_DIR}/apps/colmap_convert.c
                                       ${PROJECT_SOURCE_DIR}/apps/colmap_db.c ${PROJECT_SOURCE_DIR}/apps/test_point.c
                                       ${PROJECT_SOURCE_DIR}/apps/test_vfs.c)
  target_include_directories(test_colmap_keypoints PRIVATE ${PROJECT_SOURCE_DIR}/apps)
  target_link_libraries(test_colmap_keypoints PRIVATE matchnet_opencv SQLite::SQLite3 m)
  add_test(NAME test_colmap_keypoints COMMAND test_colmap_keypoints ${mn_colmap_arg})
  set_tests_properties(test_colmap_keypoints PROPERTIES TIMEOUT 300)

  # The descriptor store on its own (float16 against numpy's, files read
  # back, stale and corrupt ones refused, the cache's budget).
  add_executable(test_colmap_store test_colmap_store.c ${PROJECT_SOURCE_DIR}/apps/colmap_store.c
                                   ${PROJECT_SOURCE_DIR}/apps/cli.c ${PROJECT_SOURCE_DIR}/apps/out_file.c
                                   ${PROJECT_SOURCE_DIR}/apps/test_point.c)
  target_include_directories(test_colmap_store PRIVATE ${PROJECT_SOURCE_DIR}/apps)
  target_link_libraries(test_colmap_store PRIVATE matchnet matchnet_opencv m)
  add_test(NAME test_colmap_store COMMAND test_colmap_store)

  # Cameras: EXIF written into JPEGs by the test (Debian's python3 with
  # OpenCV and numpy encodes them), --camera-model.
  if(MN_SYSTEM_PYTHON)
    execute_process(COMMAND ${MN_SYSTEM_PYTHON} -c "import cv2, numpy" RESULT_VARIABLE mn_py_cv2
                    OUTPUT_QUIET ERROR_QUIET)
  endif()
  if(MN_SYSTEM_PYTHON AND mn_py_cv2 EQUAL 0)
    if(MN_COLMAP_EXIF)
      set(mn_exif_arg yes)
    else()
      set(mn_exif_arg no)
    endif()
    add_test(NAME test_colmap_cameras
             COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_colmap_cameras.py
                     $<TARGET_FILE:matchnet-colmap> ${mn_exif_arg} ${mn_colmap_arg})
    set_tests_properties(test_colmap_cameras PROPERTIES TIMEOUT 300)
    # --pairs retrieval:K on views of two made-up scenes, spatial:K on
    # JPEGs with EXIF GPS tags written by the test.
    add_test(NAME test_colmap_retrieval
             COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_colmap_retrieval.py
                     $<TARGET_FILE:matchnet-colmap> ${mn_exif_arg})
    set_tests_properties(test_colmap_retrieval PROPERTIES TIMEOUT 300)
  else()
    message(STATUS "matchnet: python3 without cv2/numpy; test_colmap_cameras is not registered")
  endif()

  # At scale (issue 17): the descriptor store, --shard and --merge, each
  # database compared table by table with a single run's (Debian's
  # python3: its sqlite3 module).
  # With MN_WITH_MPI, also 2 and 3 ranks of mpirun on loopback.
  if(MN_SYSTEM_PYTHON)
    set(mn_mpirun_arg "")
    if(MN_WITH_MPI AND MPIEXEC_EXECUTABLE)
      set(mn_mpirun_arg ${MPIEXEC_EXECUTABLE})
    elseif(MN_WITH_MPI)
      message(STATUS "matchnet: mpirun not found; test_colmap_scale runs without its MPI part")
    endif()
    add_test(NAME test_colmap_scale
             COMMAND ${MN_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_colmap_scale.py
                     $<TARGET_FILE:matchnet-colmap> $<TARGET_FILE:test_colmap> ${mn_mpirun_arg})
    set_tests_properties(test_colmap_scale PROPERTIES TIMEOUT 300)
  endif()

  if(MN_COLMAP_EXECUTABLE)
    add_test(NAME test_colmap_mapper
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_colmap_mapper.sh $<TARGET_FILE:matchnet-colmap>
                     $<TARGET_FILE:test_colmap> ${PROJECT_SOURCE_DIR})
    set_tests_properties(test_colmap_mapper PROPERTIES TIMEOUT 300)
    add_test(NAME test_colmap_reuse
             COMMAND test_colmap $<TARGET_FILE:matchnet-colmap> --colmap ${MN_COLMAP_EXECUTABLE})
    set_tests_properties(test_colmap_reuse PROPERTIES TIMEOUT 300)
  endif()
endif()
