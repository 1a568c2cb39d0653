#include "trace_options.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>

#include "build_info.hpp"
#include "git_revision.hpp"
#include "nfqtrace/base/version.hpp"
#include "run_meta.hpp"

namespace nfqtrace::cli {
namespace {

core::Duration seconds(double s) {
  return std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(s));
}

std::optional<std::uint32_t> parse_mark(const std::string& mark) {
  const char* begin = mark.c_str();
  int base = 10;
  if (mark.rfind("0x", 0) == 0 || mark.rfind("0X", 0) == 0) {
    begin += 2;
    base = 16;
  }
  std::uint32_t bits = 0;
  auto [end, ec] = std::from_chars(begin, mark.c_str() + mark.size(), bits, base);
  if (ec != std::errc() || end != mark.c_str() + mark.size() || bits == 0) return std::nullopt;
  return bits;
}

// "nfqtrace 0.1.0 (git 2d0af86e1c2a)" and what it was built with.
std::string version_text(const std::string& tool) {
  const std::string_view revision = NFQTRACE_GIT_REVISION;
  return fmt::format("{} {}{}\nbuilt with {}\n", tool, nfqtrace::version,
                     revision.empty() ? "" : fmt::format(" (git {})", revision), NFQTRACE_BUILT_WITH);
}

}  // namespace

void add_shared_options(CLI::App& app, SharedOptions& v, bool with_mode) {
  if (with_mode) {
    app.add_option("--mode", v.mode, "dup: send TTL-limited copies (harmless); mangle: lower the TTL of originals")
        ->check(CLI::IsMember({"dup", "mangle"}))
        ->capture_default_str();
  }
  app.add_option("--maxttl", v.max_ttl, "highest TTL / hop limit probed")->check(CLI::Range(1, 255))->capture_default_str();
  app.add_option("--ttlrepeat", v.ttl_repeat, "probes sent for each TTL")->check(CLI::Range(1, 10))->capture_default_str();
  app.add_option("--timeout", v.timeout_s, "seconds to wait for a probe's reply")->check(CLI::Range(0.001, 60.0))->capture_default_str();
  app.add_option("--gaplimit", v.gap_limit, "consecutive silent TTLs that end a trace")->check(CLI::Range(1, 255))->capture_default_str();
  app.add_option("--packetfreq", v.packet_freq,
                 "packets of a flow that pass between two mangled ones (mangle mode); "
                 "packets to wait for data to copy (dup mode)")
      ->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--pps", v.pps, "probes per second at most, across all flows (0: no limit)")
      ->check(CLI::Range(0.0, 1e7))->capture_default_str();
  app.add_option("--stop-set", v.stop_set_s,
                 "reuse what traces of the last S seconds found (Doubletree): a flow to a "
                 "destination they reached is probed back from it only until its path meets "
                 "theirs; the hops below are theirs, marked inferred_from (dup mode)")
      ->check(CLI::Range(0.1, 1e6));
  app.add_option("--format", v.format,
                 "text, json (JSON Lines), atlas (RIPE Atlas results, a line each), warts "
                 "(scamper's binary files) or dot (Graphviz, written at the end)")
      ->check(CLI::IsMember({"text", "json", "atlas", "warts", "dot"}))
      ->capture_default_str();
  app.add_option("--output", v.outputs,
                 "also write FORMAT to FILE (repeatable), e.g. --output json=run.jsonl "
                 "--output warts=run.warts");
  app.add_option("--log-file", v.log_file, "also append the results to FILE");
  app.add_option("--queue-id", v.queue_id, "NFQUEUE number")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--queue-size", v.queue_size, "queue capacity (packets)")->check(CLI::Range(1u, 10000000u))->capture_default_str();
  app.add_option("--nflog-group", v.nflog_group, "NFLOG group for the peer's packets, and in dup mode copies of our own (default 32768 + queue id)")->check(CLI::Range(1, 65535));
  app.add_option("--mark", v.mark, "mark bits of our own probes and of connections whose trace is over (both skip the queue)")->capture_default_str();
  app.add_option("--user", v.user, "once set up, run as this user with CAP_NET_ADMIN only")->capture_default_str();
}

std::optional<std::string> apply(const SharedOptions& v, runtime::TracerOptions& out) {
  const auto mark = parse_mark(v.mark);
  if (!mark) return fmt::format("--mark: expected a non-zero number, e.g. {:#x}", sys::default_mark);
  // Two more bits, just below --mark's lowest: of a flow waiting for a
  // retransmission (--trigger retransmit), and of a flow whose round waits
  // for its answers past the queue.
  const std::uint32_t lowest = *mark & (~*mark + 1);
  if (lowest < 4)
    return fmt::format("--mark: its lowest bit must leave two free bits below it, e.g. {:#x}",
                       sys::default_mark);
  out.watch_mark = lowest >> 1;
  out.round_mark = lowest >> 2;
  core::EngineConfig& e = out.engine;
  core::TraceParams& t = e.trace;
  t.mode = v.mode == "mangle" ? core::Mode::mangle : core::Mode::dup;
  t.max_ttl = static_cast<std::uint8_t>(v.max_ttl);
  t.ttl_repeat = static_cast<std::uint8_t>(v.ttl_repeat);
  t.gap_limit = static_cast<std::uint8_t>(v.gap_limit);
  t.timeout = seconds(v.timeout_s);
  t.packet_freq = v.packet_freq;
  e.probes_per_second = v.pps;
  if (v.stop_set_s) e.stop_set = seconds(*v.stop_set_s);
  e.seed = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1u;
  out.queue.queue_id = static_cast<std::uint16_t>(v.queue_id);
  out.queue.max_len = v.queue_size;
  out.probe_mark = *mark;
  out.nflog_group = static_cast<std::uint16_t>(v.nflog_group ? *v.nflog_group : 32768u + v.queue_id % 32768u);
  return std::nullopt;
}

std::variant<ResultOptions, std::string> result_options(const CLI::App& app,
                                                        const SharedOptions& v,
                                                        const std::string& tool) {
  ResultOptions r;
  r.format = parse_format(v.format).value_or(Format::text);
  for (const std::string& spec : v.outputs) {
    const auto eq = spec.find('=');
    const auto format = parse_format(spec.substr(0, eq));
    if (eq == std::string::npos || !format || eq + 1 == spec.size())
      return "--output: expected FORMAT=FILE with FORMAT text, json, atlas, warts or dot, got '" +
             spec + "'";
    r.files.push_back(OutputSpec{*format, spec.substr(eq + 1)});
  }
  r.log_file = v.log_file;
  r.meta = run_meta(app, tool);
  const bool on_terminal = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  r.live = v.live || (app.get_option_no_throw("--live") && app.count("--format") == 0 && on_terminal);
  if (r.live && !on_terminal) return std::string("--live: needs a terminal on stdin and stdout");
  return r;
}

void add_live_option(CLI::App& app, SharedOptions& v) {
  app.add_flag("--live", v.live,
               "a full-screen view of the hops, updated as replies arrive (mtr's); the default "
               "on a terminal without --format. Keys: up/down flows, p pause, n names, q quit");
}

std::optional<Exit> parse_or_exit(CLI::App& app, int argc, char** argv, const std::string& tool) {
  app.set_version_flag("--version", version_text(tool));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return Exit{0, app.help()};
  } catch (const CLI::CallForVersion&) {
    return Exit{0, version_text(tool)};
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    return Exit{2, tool + ": " + what + " (see --help)\n"};
  }
  return std::nullopt;
}

int print_exit(const Exit& exit) {
  std::fputs(exit.message.c_str(), exit.status == 0 ? stdout : stderr);
  return exit.status;
}

}  // namespace nfqtrace::cli
