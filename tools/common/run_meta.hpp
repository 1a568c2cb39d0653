// The run's self-description, the first line of --format json (as M-Lab's
// traceroute archive does): which tool, version, host, a fresh run id, when,
// and with which options, so that a file of results says where and how it
// was made.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "nfqtrace/output/meta.hpp"

namespace nfqtrace::cli {

// This run of `tool`: version, host, a fresh run id (a random UUID), the
// time now, and every option given or with a default, from the parsed
// command line.
output::Meta run_meta(const CLI::App& app, const std::string& tool);

}  // namespace nfqtrace::cli
