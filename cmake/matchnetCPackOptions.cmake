# Read by cpack for each generator (CPACK_PROJECT_CONFIG_FILE, set in
# cmake/matchnetDeb.cmake). The library compiles in its default model's
# path (PREFIX/share/matchnet/matchnet.mnw) and Debian packages install
# into /usr: a build configured for another prefix would make packages
# whose library looks for its model where no package put it.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "matchnet: Debian packages need a build configured with -DCMAKE_INSTALL_PREFIX=/usr "
                      "(this one has ${CPACK_PACKAGING_INSTALL_PREFIX})")
endif()
