// Options every nfqtrace tool shares: how to trace, which queue, how to
// print. Same names and meanings in nfqtrace, nfqtrace-server and
// nfqtrace-client.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "nfqtrace/runtime/tracer.hpp"

namespace nfqtrace::cli {

enum class Format { text, json };

struct SharedOptions {
  std::string mode = "dup";
  unsigned max_ttl = 30, ttl_repeat = 3, gap_limit = 5;
  double timeout_s = 1.0;
  std::uint32_t packet_freq = 6;
  double pps = 1000;
  std::optional<double> stop_set_s;
  unsigned queue_id = 0;
  std::uint32_t queue_size = 10000;
  std::optional<unsigned> nflog_group;
  std::string mark = "0x4e510000";
  std::string format = "text";
  std::optional<std::string> log_file;
  std::string user = "nobody";  // who we become once set up
};

// --maxttl --ttlrepeat --timeout --gaplimit --packetfreq (and --mode when
// `with_mode`), --queue-id --queue-size --nflog-group --mark, --format --log-file.
void add_shared_options(CLI::App& app, SharedOptions& values, bool with_mode = true);

// Fills the tracer's options; a one-line error for values CLI11 cannot check.
std::optional<std::string> apply(const SharedOptions& values, runtime::TracerOptions& out);
Format format_of(const SharedOptions& values);

// Runs CLI11's parser; on --help/--version or an error, the text to print and
// the exit status (0, or 2 with a one-line error).
struct Exit {
  int status = 0;
  std::string message;
};
std::optional<Exit> parse_or_exit(CLI::App& app, int argc, char** argv, const std::string& tool);

// Prints the Exit's text (--help and --version on stdout, errors on stderr)
// and returns its status, for main() to exit with.
int print_exit(const Exit& exit);

}  // namespace nfqtrace::cli
