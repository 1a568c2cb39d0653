// Options every nfqtrace tool shares: how to trace, which queue, how to
// print. Same names and meanings in nfqtrace, nfqtrace-server and
// nfqtrace-client.
#pragma once

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "formats.hpp"
#include "nfqtrace/output/meta.hpp"
#include "nfqtrace/runtime/tracer.hpp"

namespace nfqtrace::cli {

// The defaults the engine has, as the options show them.
inline const core::EngineConfig engine_defaults{};
inline const core::TraceParams& trace_defaults = engine_defaults.trace;
inline double seconds_of(core::Duration d) { return std::chrono::duration<double>(d).count(); }

struct SharedOptions {
  std::string mode{core::to_string(trace_defaults.mode)};
  unsigned max_ttl = trace_defaults.max_ttl;
  unsigned ttl_repeat = trace_defaults.ttl_repeat;
  unsigned gap_limit = trace_defaults.gap_limit;
  double timeout_s = seconds_of(trace_defaults.timeout);
  std::uint32_t packet_freq = trace_defaults.packet_freq;
  double pps = engine_defaults.probes_per_second;
  std::optional<double> stop_set_s;
  unsigned queue_id = 0;
  std::uint32_t queue_size = 10000;
  std::optional<unsigned> nflog_group;
  std::string mark = fmt::format("{:#x}", sys::default_mark);
  std::string format = "text";
  std::vector<std::string> outputs;  // --output FORMAT=FILE
  bool live = false;                 // --live (nfqtrace, nfqtrace-client)
  std::optional<std::string> log_file;
  std::string user = "nobody";  // who we become once set up
};

// --maxttl --ttlrepeat --timeout --gaplimit --packetfreq (and --mode when
// `with_mode`), --queue-id --queue-size --nflog-group --mark, --format --output --log-file.
void add_shared_options(CLI::App& app, SharedOptions& values, bool with_mode = true);

// Fills the tracer's options; a one-line error for values CLI11 cannot check.
std::optional<std::string> apply(const SharedOptions& values, runtime::TracerOptions& out);

// Where a tool's results go (--format on stdout, each --output to its file,
// --log-file), and the run's meta line.
struct ResultOptions {
  Format format = Format::text;
  std::vector<OutputSpec> files;
  std::optional<std::string> log_file;
  output::Meta meta;  // the run, as the results describe it
  bool live = false;  // the live view on the terminal instead of --format
};
// From the parsed command line of `tool`, or a one-line error.
std::variant<ResultOptions, std::string> result_options(const CLI::App& app,
                                                        const SharedOptions& values,
                                                        const std::string& tool);
// --live: the live view. Without it, the tool shows the view anyway when
// stdin and stdout are a terminal and no --format was given.
void add_live_option(CLI::App& app, SharedOptions& values);

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
