# nfqtrace_split_debug(TARGET...): `cmake --install --strip` installs the
# programs stripped; `cmake --install BUILD --component debuginfo` installs
# their debug information beside, split off with objcopy, under
# <prefix>/lib/debug/.build-id/xx/yyyy.debug, where gdb finds it by the
# program's build ID (for the prefix /usr, gdb's debug-file-directory).
function(nfqtrace_split_debug)
  foreach(target ${ARGN})
    install(CODE "execute_process(COMMAND \"${CMAKE_COMMAND}\" -DPROGRAM=$<TARGET_FILE:${target}>
                    \"-DDEBUG_DIR=\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/debug\"
                    -P \"${PROJECT_SOURCE_DIR}/cmake/InstallDebugInfo.cmake\" COMMAND_ERROR_IS_FATAL ANY)"
            COMPONENT debuginfo EXCLUDE_FROM_ALL)
  endforeach()
endfunction()
