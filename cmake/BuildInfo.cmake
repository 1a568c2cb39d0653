# What `--version` tells beyond the version (which has one definition,
# project(VERSION)): the git revision the programs were built from, and the
# compiler and libraries they were built with. Two generated headers in
# ${PROJECT_BINARY_DIR}/tools/generated: build_info.hpp at configure time,
# git_revision.hpp at every build (rewritten only when the revision changes,
# so a new commit recompiles one file).
set(NFQTRACE_GIT_REVISION "" CACHE STRING
    "The git revision to report, for builds from a copy without .git (scripts/package)")
set(nfqtrace_build_info_dir ${PROJECT_BINARY_DIR}/tools/generated)

string(REPLACE "GNU" "g++" compiler "${CMAKE_CXX_COMPILER_ID}")
string(REPLACE "Clang" "clang++" compiler "${compiler}")
set(NFQTRACE_BUILT_WITH
    "${compiler} ${CMAKE_CXX_COMPILER_VERSION}; libmnl ${MNL_VERSION}, libnetfilter_queue ${NFQ_VERSION}, libnetfilter_log ${NFLOG_VERSION}, libcap ${LIBCAP_VERSION}, fmt ${fmt_VERSION}, nlohmann-json ${nlohmann_json_VERSION}, CLI11 ${CLI11_VERSION}")
configure_file(${PROJECT_SOURCE_DIR}/tools/common/build_info.hpp.in ${nfqtrace_build_info_dir}/build_info.hpp @ONLY)

add_custom_target(nfqtrace_git_revision
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DFIXED=${NFQTRACE_GIT_REVISION}
          -DOUT=${nfqtrace_build_info_dir}/git_revision.hpp -P ${PROJECT_SOURCE_DIR}/cmake/GitRevision.cmake
  BYPRODUCTS ${nfqtrace_build_info_dir}/git_revision.hpp
  COMMENT "" VERBATIM)
