# What `cmake --install` puts under CMAKE_INSTALL_PREFIX, and only there (a
# staged DESTDIR install writes nothing outside the prefix): the three
# programs, the layer libraries with their headers, a CMake package and a
# pkg-config file to link them, the man pages and the systemd units.
include(CMakePackageConfigHelpers)

# The units go where systemd looks for a package's units: the prefix's
# lib/systemd/system. Debian 12 packages put them in /lib/systemd/system
# (packaging/debian/rules says so with this variable).
set(NFQTRACE_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd units are installed (relative: under the prefix)")

# --- the programs: stripped by `cmake --install --strip`; their debug
# information, split off at build time, is the `debuginfo` component.
install(TARGETS nfqtrace_cli nfqtrace_server nfqtrace_client
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT programs)
include(cmake/SplitDebug.cmake)
nfqtrace_split_debug(nfqtrace_cli nfqtrace_server nfqtrace_client)

# --- the libraries, exported as nfqtrace::<layer>; nfqtrace::nfqtrace is
# all of them, as the programs link it (docs/library.md).
set(nfqtrace_layers base wire core output coop sys runtime)
foreach(layer ${nfqtrace_layers})
  set_target_properties(nfqtrace_${layer} PROPERTIES EXPORT_NAME ${layer})
  if(NOT layer STREQUAL "base")
    install(DIRECTORY src/${layer}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devel)
  endif()
endforeach()
install(DIRECTORY src/base/include/ ${PROJECT_BINARY_DIR}/src/generated/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devel)
# The headers are C++20: a requirement that programs linking them inherit.
target_compile_features(nfqtrace_base INTERFACE cxx_std_20)
# The static layers name their private dependencies for the linker; our
# warning flags are one of them, and only its (empty) link part travels.
set_target_properties(nfqtrace_warnings PROPERTIES EXPORT_NAME warnings)
install(TARGETS nfqtrace nfqtrace_warnings
                nfqtrace_base nfqtrace_wire nfqtrace_core nfqtrace_output nfqtrace_coop
                nfqtrace_sys nfqtrace_runtime
        EXPORT nfqtrace-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel)
set(nfqtrace_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/nfqtrace)
install(EXPORT nfqtrace-targets NAMESPACE nfqtrace:: DESTINATION ${nfqtrace_cmake_dir} COMPONENT devel)
configure_package_config_file(packaging/cmake/nfqtrace-config.cmake.in
  ${PROJECT_BINARY_DIR}/packaging/nfqtrace-config.cmake INSTALL_DESTINATION ${nfqtrace_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/packaging/nfqtrace-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/packaging/nfqtrace-config.cmake
              ${PROJECT_BINARY_DIR}/packaging/nfqtrace-config-version.cmake
        DESTINATION ${nfqtrace_cmake_dir} COMPONENT devel)

# pkg-config: prefix relative to the file itself, so a staged tree works too.
file(RELATIVE_PATH nfqtrace_pc_to_prefix
     ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(packaging/pkgconfig/nfqtrace.pc.in ${PROJECT_BINARY_DIR}/packaging/nfqtrace.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/nfqtrace.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devel)

# --- man pages (scdoc) and systemd units.
include(cmake/ManPages.cmake)
file(READ packaging/systemd/sandbox.conf NFQTRACE_UNIT_SANDBOX)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS packaging/systemd/sandbox.conf)
foreach(unit nfqtrace-server.service nfqtrace@.service)
  configure_file(packaging/systemd/${unit}.in ${PROJECT_BINARY_DIR}/packaging/${unit} @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/${unit}
          DESTINATION ${NFQTRACE_SYSTEMD_UNITDIR} COMPONENT programs)
endforeach()
install(FILES packaging/systemd/nfqtrace-server.default
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/nfqtrace/examples COMPONENT programs)
