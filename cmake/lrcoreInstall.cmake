# Installs the C++ API: headers, the static library lrcore_kernels (exported as
# lrcore::lrcore) and a relocatable CMake package with a version file.
#
# Destinations (LRCORE_INSTALL_*DIR) are set in the top-level CMakeLists.txt
# before the library target is defined, because its INSTALL_INTERFACE include
# directory names one of them: a plain install uses the GNU layout
# (include/, lib/, lib/cmake/lrcore); a wheel puts everything inside the
# Python package (lrcore/include, lrcore/lib, lrcore/lib/cmake/lrcore), where
# lrcore.get_include() and lrcore.get_cmake_dir() find it.
include(CMakePackageConfigHelpers)

set_target_properties(lrcore_kernels PROPERTIES EXPORT_NAME lrcore)

install(TARGETS lrcore_kernels
  EXPORT lrcoreTargets
  ARCHIVE DESTINATION ${LRCORE_INSTALL_LIBDIR})

install(DIRECTORY ${PROJECT_SOURCE_DIR}/cpp/include/lrcore
  DESTINATION ${LRCORE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp")

install(EXPORT lrcoreTargets
  NAMESPACE lrcore::
  DESTINATION ${LRCORE_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/lrcoreConfig.cmake.in
  ${PROJECT_BINARY_DIR}/lrcoreConfig.cmake
  INSTALL_DESTINATION ${LRCORE_INSTALL_CMAKEDIR})

# 0.x releases may break the API between minor versions.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/lrcoreConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)

install(FILES
  ${PROJECT_BINARY_DIR}/lrcoreConfig.cmake
  ${PROJECT_BINARY_DIR}/lrcoreConfigVersion.cmake
  DESTINATION ${LRCORE_INSTALL_CMAKEDIR})
