// nfqtrace-client: both directions of one live connection.
#include <fmt/format.h>

#include "../common/trace_options.hpp"
#include "client.hpp"

namespace {

using namespace nfqtrace;

std::variant<client::ClientOptions, cli::Exit> parse(int argc, char** argv) {
  CLI::App app{
      "nfqtrace-client: connects to an nfqtrace-server and shows the path of that\n"
      "connection in both directions: forward (traced here) and reverse (traced by\n"
      "the server and sent back inside the connection)."};
  app.get_formatter()->column_width(34);

  client::ClientOptions o;
  cli::SharedOptions shared;
  bool client_dups = true, server_dups = true;
  std::uint32_t client_freq = cli::trace_defaults.packet_freq;
  std::uint32_t server_freq = cli::trace_defaults.packet_freq;
  double time_limit_s = 60;
  app.add_option("server", o.server, "HOST:PORT or [IPv6]:PORT of an nfqtrace-server")->required();
  app.add_option("--client-send-dups", client_dups, "trace forward with duplicates (true) or by lowering the TTL of our packets (false)")
      ->expected(0, 1)->default_str("true")->capture_default_str();
  app.add_option("--client-mangle-freq", client_freq, "forward, mangle mode: packets between two mangled ones")
      ->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--server-send-dups", server_dups, "ask the server to trace with duplicates (true) or by mangling (false)")
      ->expected(0, 1)->default_str("true")->capture_default_str();
  app.add_option("--server-mangle-freq", server_freq, "reverse, mangle mode: packets between two mangled ones")
      ->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--time-limit", time_limit_s, "give up after this many seconds")->check(CLI::Range(1.0, 86400.0))->capture_default_str();
  cli::add_shared_options(app, shared, /*with_mode=*/false);
  cli::add_live_option(app, shared);
  cli::add_lookup_options(app, o.lookup);

  if (auto exit = cli::parse_or_exit(app, argc, argv, "nfqtrace-client")) return *exit;
  if (auto error = cli::apply(shared, o.tracer))
    return cli::Exit{2, "nfqtrace-client: " + *error + " (see --help)\n"};

  core::TraceParams& t = o.tracer.engine.trace;
  t.mode = client_dups ? core::Mode::dup : core::Mode::mangle;
  if (!client_dups) t.packet_freq = client_freq;
  o.tracer.stop_after_traces.reset();  // the client decides when it is done

  coop::TraceRequest& p = o.server_params;
  p.mode = server_dups ? core::Mode::dup : core::Mode::mangle;
  p.packet_freq = server_dups ? shared.packet_freq : server_freq;
  p.max_ttl = t.max_ttl;
  p.ttl_repeat = t.ttl_repeat;
  p.timeout = t.timeout;
  p.gap_limit = t.gap_limit;
  auto results = cli::result_options(app, shared, "nfqtrace-client");
  if (auto* error = std::get_if<std::string>(&results))
    return cli::Exit{2, "nfqtrace-client: " + *error + " (see --help)\n"};
  o.results = std::get<cli::ResultOptions>(std::move(results));
  o.user = shared.user;
  o.overall_timeout = std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(time_limit_s));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse(argc, argv);
  if (auto* exit = std::get_if<cli::Exit>(&parsed)) return cli::print_exit(*exit);
  return client::run_client(std::get<client::ClientOptions>(parsed));
}
