# Install-side packaging: find_package(matchnet) (an exported target set,
# a config file and its version file) and the pkg-config file of the C
# library. plugin/CMakeLists.txt adds the opencv component's part
# (matchnetOpenCVTargets.cmake, matchnet-opencv.pc) with these variables.
include(CMakePackageConfigHelpers)

set(MN_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/matchnet)

install(EXPORT matchnetTargets NAMESPACE matchnet:: DESTINATION ${MN_CMAKE_INSTALL_DIR} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/matchnetConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/matchnetConfig.cmake
                              INSTALL_DESTINATION ${MN_CMAKE_INSTALL_DIR})
# 0.x: a new minor version may change the ABI (SOVERSION is the major).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/matchnetConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/matchnetConfig.cmake ${PROJECT_BINARY_DIR}/matchnetConfigVersion.cmake
        DESTINATION ${MN_CMAKE_INSTALL_DIR} COMPONENT dev)

# pkg-config files locate the prefix from their own directory (${pcfiledir}),
# so `cmake --install --prefix DIR` gives working files in any DIR.
set(MN_PC_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH _mn_pc_up "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" _mn_pc_up "${_mn_pc_up}")
set(MN_PC_PREFIX "\${pcfiledir}/${_mn_pc_up}")
foreach(_mn_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_mn_dir}}")
    set(MN_PC_${_mn_dir} "${CMAKE_INSTALL_${_mn_dir}}")
  else()
    set(MN_PC_${_mn_dir} "\${prefix}/${CMAKE_INSTALL_${_mn_dir}}")
  endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/matchnet.pc.in ${PROJECT_BINARY_DIR}/matchnet.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/matchnet.pc DESTINATION ${MN_PC_INSTALL_DIR} COMPONENT dev)
