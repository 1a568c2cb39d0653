# cmake -DPROGRAM=file -DDEBUG_DIR=dir -P InstallDebugInfo.cmake
# Copies PROGRAM's debug information to DEBUG_DIR/.build-id/xx/yyyy.debug.
find_program(OBJCOPY objcopy REQUIRED)
find_program(READELF readelf REQUIRED)
execute_process(COMMAND ${READELF} -n ${PROGRAM} OUTPUT_VARIABLE notes COMMAND_ERROR_IS_FATAL ANY)
if(NOT notes MATCHES "Build ID: ([0-9a-f][0-9a-f])([0-9a-f]+)")
  message(FATAL_ERROR "${PROGRAM} has no build ID: its debug information could not be found")
endif()
set(debug_file ${DEBUG_DIR}/.build-id/${CMAKE_MATCH_1}/${CMAKE_MATCH_2}.debug)
get_filename_component(dir ${debug_file} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
message(STATUS "Installing: ${debug_file}")
execute_process(COMMAND ${OBJCOPY} --only-keep-debug --compress-debug-sections ${PROGRAM} ${debug_file}
                COMMAND_ERROR_IS_FATAL ANY)
