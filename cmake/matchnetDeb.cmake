# Debian packages: in a build directory configured with
# -DCMAKE_INSTALL_PREFIX=/usr, `cpack -G DEB` writes one .deb per install
# component, named as Debian names them (NAME_VERSION-REVISION_ARCH.deb):
#
#   component  package              contents
#   runtime    libmatchnet0         libmatchnet.so.0 (the engine; needs only BLAS)
#   opencv     libmatchnet-opencv0  libmatchnet_opencv.so.0 (the OpenCV plugin)
#   dev        libmatchnet-dev      headers, .so links, CMake config, pkg-config files
#   tools      libmatchnet-tools    matchnet-match, -stitch, -colmap and their man pages
#   model      libmatchnet-model    share/matchnet/matchnet.mnw (architecture all)
#   python     python3-matchnet     the Python module (ctypes over the two libraries)
#
# The 0 is the SOVERSION (the project's major version). The two libraries
# are separate packages so that a program on the engine alone does not pull
# in OpenCV. The programs and the model are named after the library, as
# libtiff-tools and libmagic-mgc are, so that `apt-get install
# ./libmatchnet*.deb` takes all but the Python module, whose name Debian's
# Python policy sets. Dependencies on system libraries come from
# dpkg-shlibdeps; those among our packages are exact versions, since they
# are built from one tree. The research programs of eval/ (component eval)
# are installed by `cmake --install` but not packaged. scripts/test_deb.sh
# builds, installs, uses and removes the packages.

if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  return()
endif()

set(MN_DEB_MAINTAINER "The libmatchnet authors <libmatchnet@example.org>" CACHE STRING
    "Maintainer field of the Debian packages")
set(MN_DEB_REVISION 1 CACHE STRING "Debian revision of the packages (their version is VERSION-REVISION)")
set(MN_DEB_VERSION "${PROJECT_VERSION}-${MN_DEB_REVISION}")
set(mn_so ${PROJECT_VERSION_MAJOR})

# Which components this configuration has, and their package names.
set(mn_deb_components runtime dev)
set(mn_deb_name_runtime libmatchnet${mn_so})
set(mn_deb_name_dev libmatchnet-dev)
if(TARGET matchnet_opencv)
  list(APPEND mn_deb_components opencv)
  set(mn_deb_name_opencv libmatchnet-opencv${mn_so})
endif()
if(TARGET matchnet-match)
  list(APPEND mn_deb_components tools)
  set(mn_deb_name_tools libmatchnet-tools)
endif()
if(EXISTS ${PROJECT_SOURCE_DIR}/models/matchnet.mnw)
  list(APPEND mn_deb_components model)
  set(mn_deb_name_model libmatchnet-model)
endif()
if(MN_BUILD_PYTHON AND TARGET matchnet_opencv)
  list(APPEND mn_deb_components python)
  set(mn_deb_name_python python3-matchnet)
endif()

# Each package's usr/share/doc/PKG: the copyright file (DEP-5, LICENSE's
# text and the model's training-data licences) and a changelog, which
# Debian requires of every binary package. Only component installs (CPack)
# write them: a plain `cmake --install` has no packages to document.
file(STRINGS ${PROJECT_SOURCE_DIR}/LICENSE mn_license_lines)
set(MN_DEB_LICENSE_TEXT "")
foreach(line IN LISTS mn_license_lines)
  if(line STREQUAL "")
    string(APPEND MN_DEB_LICENSE_TEXT " .\n")
  else()
    string(APPEND MN_DEB_LICENSE_TEXT " ${line}\n")
  endif()
endforeach()
string(REGEX REPLACE "\n$" "" MN_DEB_LICENSE_TEXT "${MN_DEB_LICENSE_TEXT}")
set(mn_deb_doc ${PROJECT_BINARY_DIR}/debian)
configure_file(${PROJECT_SOURCE_DIR}/cmake/debian/copyright.in ${mn_deb_doc}/copyright @ONLY)
# The date honours SOURCE_DATE_EPOCH, for reproducible packages.
string(TIMESTAMP MN_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${PROJECT_SOURCE_DIR}/cmake/debian/changelog.in ${mn_deb_doc}/changelog.Debian @ONLY)
find_program(MN_GZIP gzip)
if(MN_GZIP)
  execute_process(COMMAND ${MN_GZIP} -9nf ${mn_deb_doc}/changelog.Debian)
endif()
foreach(c IN LISTS mn_deb_components)
  install(FILES ${mn_deb_doc}/copyright ${mn_deb_doc}/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${mn_deb_name_${c}} COMPONENT ${c} EXCLUDE_FROM_ALL)
endforeach()

set(CPACK_PACKAGE_NAME libmatchnet)
set(CPACK_PACKAGE_VENDOR "The libmatchnet authors")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
# The prefix the binaries were configured for (the default model's path is
# compiled in); cmake/matchnetCPackOptions.cmake refuses DEB for any but /usr.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/matchnetCPackOptions.cmake)
# Install with DESTDIR, so that install(CODE) sees the real prefix:
# python/CMakeLists.txt writes the libraries' installed paths into _config.py.
set(CPACK_SET_DESTDIR ON)
set(CPACK_COMPONENTS_ALL ${mn_deb_components})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${MN_DEB_REVISION})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MN_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Stripped binaries and libraries, as Debian ships them (the symbols of a
# Release build are no use without its debug information).
set(CPACK_STRIP_FILES ON)
# dpkg-shlibdeps must find our own libraries, which no installed package
# has yet: it looks in the build tree and, finding no package for them,
# leaves them out; the exact-version dependencies below name them instead.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})
if(TARGET matchnet_opencv)
  get_target_property(mn_plugin_dir matchnet_opencv BINARY_DIR)
  list(APPEND CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${mn_plugin_dir})
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)  # maintainer scripts 0755, other control files 0644
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)  # CPACK_COMPONENT_*_DEPENDS: "PKG (= VERSION-REVISION)"

foreach(c IN LISTS mn_deb_components)
  string(TOUPPER ${c} C)
  set(CPACK_DEBIAN_${C}_PACKAGE_NAME ${mn_deb_name_${c}})
endforeach()

# The library packages get shlibs files, so that packages built against
# them get their dependencies from dpkg-shlibdeps.
# The policy is "=": a 0.x minor version may change the ABI under the same
# soname (cmake/matchnetPackage.cmake), so no later version is assumed to fit.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")

# Debian requires the ldconfig trigger of library packages (CPack adds
# postinst and postrm scripts that call ldconfig as well, which lintian
# warns about: harmless, ldconfig runs twice).
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/triggers)
set(CPACK_DEBIAN_OPENCV_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/triggers)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "MatchNet learned patch descriptor and metric (C library)
libmatchnet computes MatchNet (Han et al., CVPR 2015) descriptors of image
patches around keypoints and the probability that two patches show the
same point (the learned metric network), and matches two images'
descriptors. It is the engine: C11, OpenBLAS, AVX2 and AVX-512 kernels
chosen at run time, bit-identical results whatever the thread count.
The trained model is in libmatchnet-model.")
if(mn_deb_name_model)
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS ${mn_deb_name_model})
endif()

set(CPACK_DEBIAN_OPENCV_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_OPENCV_DEPENDS runtime)
set(CPACK_DEBIAN_OPENCV_DESCRIPTION "MatchNet feature matching for OpenCV (plugin library)
libmatchnet_opencv puts libmatchnet into OpenCV pipelines: C functions for
image decoding, keypoint detection (SIFT, ORB, AKAZE), RANSAC filtering
and drawing, and C++ classes: a cv::Feature2D, a cv::DescriptorMatcher and
a cv::Stitcher features matcher.")

set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
if(TARGET matchnet_opencv)
  list(APPEND CPACK_COMPONENT_DEV_DEPENDS opencv)
  # matchnet-opencv.pc requires opencv4, and matchnet::opencv OpenCV's config.
  set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libopencv-dev")
endif()
set(CPACK_DEBIAN_DEV_DESCRIPTION "MatchNet feature description and matching (development files)
Headers (matchnet.h, matchnet/opencv.h, matchnet/opencv.hpp), the .so links,
find_package(matchnet [COMPONENTS opencv]) for CMake and the pkg-config
files matchnet and matchnet-opencv.")

if(mn_deb_name_tools)
  set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION science)
  set(CPACK_COMPONENT_TOOLS_DEPENDS runtime opencv)
  if(mn_deb_name_model)
    list(APPEND CPACK_COMPONENT_TOOLS_DEPENDS model)
  endif()
  set(CPACK_DEBIAN_TOOLS_DESCRIPTION "MatchNet feature matching programs
matchnet-match matches two images (keypoints, MatchNet descriptors, the
learned metric, RANSAC) and writes the match list as JSON; matchnet-stitch
stitches a panorama with OpenCV's stitcher on MatchNet matches;
matchnet-colmap writes keypoints and matches into a COLMAP database for
Structure-from-Motion.")
endif()

if(mn_deb_name_model)
  set(CPACK_DEBIAN_MODEL_PACKAGE_SECTION science)
  set(CPACK_DEBIAN_MODEL_PACKAGE_ARCHITECTURE all)  # little-endian data, read the same everywhere
  set(CPACK_DEBIAN_MODEL_DESCRIPTION "MatchNet trained model (256-D descriptor and metric network)
The default model of libmatchnet (/usr/share/matchnet/matchnet.mnw): a
MatchNet feature tower with a 256-D L2-normalised descriptor and a
512-512-512 metric network, trained on SIFT keypoints. The copyright file
lists the licences of its training data.")
endif()

if(mn_deb_name_python)
  set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
  set(CPACK_COMPONENT_PYTHON_DEPENDS runtime opencv)
  if(mn_deb_name_model)
    list(APPEND CPACK_COMPONENT_PYTHON_DEPENDS model)
  endif()
  # Pure Python, but _config.py names the libraries' multiarch directory,
  # so the package is as architecture-bound as they are.
  set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS "python3, python3-numpy, python3-opencv")
  # Byte-compiled on install and cleaned on removal, as dh_python3 does:
  # otherwise an import as root leaves __pycache__ behind after a purge.
  set(CPACK_DEBIAN_PYTHON_PACKAGE_CONTROL_EXTRA
      ${PROJECT_SOURCE_DIR}/cmake/debian/python/postinst ${PROJECT_SOURCE_DIR}/cmake/debian/python/prerm)
  set(CPACK_DEBIAN_PYTHON_DESCRIPTION "MatchNet feature description and matching (Python 3)
The matchnet module: MatchNet (a cv2.Feature2D look-alike), Matcher (a
cv2.DescriptorMatcher look-alike with match probabilities) and match_pair(),
over libmatchnet and its OpenCV plugin through ctypes.")
endif()

include(CPack)
