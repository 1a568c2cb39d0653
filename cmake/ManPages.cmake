# The man pages, written in scdoc (packaging/man/*.scd) and turned into
# roff at build time, installed in section 8 of the prefix's man/. The
# options the three programs share are written once, in trace-options.scd,
# and end each page.
# Without scdoc (Debian's scdoc package) they are left out, with a note.
find_program(NFQTRACE_SCDOC NAMES scdoc)
if(NOT NFQTRACE_SCDOC)
  message(STATUS "scdoc not found: the man pages are not built (apt-get install scdoc)")
  return()
endif()
set(nfqtrace_man_pages)
foreach(page nfqtrace.8 nfqtrace-server.8 nfqtrace-client.8)
  set(source ${PROJECT_SOURCE_DIR}/packaging/man/${page}.scd)
  set(shared ${PROJECT_SOURCE_DIR}/packaging/man/trace-options.scd)
  set(roff ${PROJECT_BINARY_DIR}/man/${page})
  add_custom_command(OUTPUT ${roff}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND sh -c "cat \"$1\" \"$2\" | \"$0\" > \"$3\"" ${NFQTRACE_SCDOC} ${source} ${shared} ${roff}
    DEPENDS ${source} ${shared} VERBATIM)
  list(APPEND nfqtrace_man_pages ${roff})
endforeach()
add_custom_target(nfqtrace_man ALL DEPENDS ${nfqtrace_man_pages})
install(FILES ${nfqtrace_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT programs)
