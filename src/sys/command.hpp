// Runs a helper program (iptables-restore, nft, ...) the safe way: no shell,
// argv straight to exec, text fed on stdin, stdout and stderr captured, no
// descriptor of ours leaking into the child.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nfqtrace/sys/error.hpp"

namespace nfqtrace::sys {

struct CommandOutput {
  int exit_code = 0;  // 128 + signal number when the child was killed
  std::string out;
  std::string err;
};

// Absolute path of the program `name`, searched in PATH and then in the sbin
// directories (PATH of a sudo or cron environment may lack them); nullopt
// when it is not installed.
std::optional<std::string> find_program(std::string_view name);

// Runs `path` with `argv` (argv[0] included: multi-call binaries such as
// xtables-nft-multi dispatch on it) and `input` on stdin. The Error covers
// only failing to run it; a non-zero exit is reported in exit_code.
Result<CommandOutput> run_command(const std::string& path, const std::vector<std::string>& argv,
                                  std::string_view input = {});

// The line of stderr worth showing: the first that is not a warning (falls
// back to the first line; "" when stderr is empty).
std::string first_error_line(std::string_view err);

// "<command> failed: <first error line>", or the exit code when stderr is
// empty: the one-line message for a command that exited non-zero.
std::string describe_failure(std::string_view command, const CommandOutput& output);

}  // namespace nfqtrace::sys
