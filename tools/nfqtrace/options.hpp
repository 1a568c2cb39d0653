// The command line of nfqtrace: the option names of the original
// ParasiticTraceroute, plus ours.
#pragma once

#include <optional>
#include <string>
#include <variant>

#include "nfqtrace/runtime/tracer.hpp"

namespace nfqtrace::cli {

enum class Format { text, json };

struct Options {
  runtime::TracerOptions tracer;
  Format format = Format::text;
  std::optional<std::string> log_file;
};

// Parses argv. On --help/--version the text to print and exit 0; on a bad
// argument a one-line error and exit 2.
struct Exit {
  int status = 0;
  std::string message;
};
std::variant<Options, Exit> parse_options(int argc, char** argv);

}  // namespace nfqtrace::cli
