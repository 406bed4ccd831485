# Tests of matchnet-colmap: the COLMAP database it writes (test_colmap.c,
# SQLite C API, no colmap needed) and, where colmap is installed, that
# samples/sfm.sh's path through colmap's verification and mapper
# registers the rendered views (test_colmap_mapper.sh).
if(TARGET matchnet-colmap)
  find_package(SQLite3 REQUIRED)  # imported targets are per directory
  add_executable(test_colmap test_colmap.c)
  target_link_libraries(test_colmap PRIVATE matchnet_opencv SQLite::SQLite3 m)
  add_test(NAME test_colmap COMMAND test_colmap $<TARGET_FILE:matchnet-colmap>)
  set_tests_properties(test_colmap PROPERTIES TIMEOUT 300)

  find_program(MN_COLMAP_EXECUTABLE colmap)
  if(MN_COLMAP_EXECUTABLE)
    add_test(NAME test_colmap_mapper
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_colmap_mapper.sh $<TARGET_FILE:matchnet-colmap>
                     $<TARGET_FILE:test_colmap> ${PROJECT_SOURCE_DIR})
    set_tests_properties(test_colmap_mapper PROPERTIES TIMEOUT 300)
  else()
    message(STATUS "matchnet: colmap not found; test_colmap_mapper is not registered")
  endif()
endif()
