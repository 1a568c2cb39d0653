// nfqtrace-server: traces the reverse path of each client's connection and
// sends the results to that client, inside the connection.
#include <fmt/format.h>

#include "../common/address_lookup.hpp"
#include "../common/console.hpp"
#include "../common/metrics_server.hpp"
#include "../common/tool_start.hpp"
#include "../common/trace_options.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/privileges.hpp"
#include "server.hpp"

namespace {

using namespace nfqtrace;

core::Duration seconds(double s) {
  return std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(s));
}

std::variant<server::ServerOptions, cli::Exit> parse(int argc, char** argv) {
  CLI::App app{
      "nfqtrace-server: traces the path from this server back to each nfqtrace-client\n"
      "that connects, and streams the results to that client inside its connection."};
  app.get_formatter()->column_width(32);

  server::ServerOptions o;
  cli::SharedOptions shared;
  unsigned port = 0;
  std::optional<std::string> interface;
  double time_limit_s = 60, idle_s = 10;
  bool allow_mangle = true;
  bool forward = false;
  app.add_option("--port", port, "TCP port to listen on (IPv4 and IPv6)")->required()->check(CLI::Range(1, 65535));
  app.add_option("--interface", interface, "only trace packets leaving through this interface");
  app.add_option("--max-clients", o.max_clients, "clients served at once")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--client-time-limit", time_limit_s, "seconds a client may stay connected")->check(CLI::Range(1.0, 86400.0))->capture_default_str();
  app.add_option("--client-idle-timeout", idle_s, "seconds a client may stay silent")->check(CLI::Range(0.5, 3600.0))->capture_default_str();
  app.add_option("--allow-mangle", allow_mangle, "let clients ask for mangle mode (lowering the TTL of our own packets to them)")->capture_default_str();
  app.add_flag("--forward", forward,
               "also trace the connections from --port that this host forwards (a gateway in "
               "front of servers), with the trace options given here; their results are written here only");
  cli::add_shared_options(app, shared);
  cli::add_metrics_options(app, o.metrics);
  cli::add_lookup_options(app, o.lookup);

  if (auto exit = cli::parse_or_exit(app, argc, argv, "nfqtrace-server")) return *exit;
  if (auto error = cli::apply(shared, o.tracer))
    return cli::Exit{2, "nfqtrace-server: " + *error + " (see --help)\n"};

  o.port = static_cast<std::uint16_t>(port);
  auto results = cli::result_options(app, shared, "nfqtrace-server");
  if (auto* error = std::get_if<std::string>(&results))
    return cli::Exit{2, "nfqtrace-server: " + *error + " (see --help)\n"};
  o.results = std::get<cli::ResultOptions>(std::move(results));
  o.user = shared.user;
  o.limits.client_time_limit = seconds(time_limit_s);
  o.limits.idle_timeout = seconds(idle_s);
  o.limits.allow_mangle = allow_mangle;
  o.tracer.flows_may_mangle = allow_mangle;
  // Clients get at most what the operator allows on the command line.
  o.limits.max_ttl = std::min<std::uint8_t>(o.limits.max_ttl, o.tracer.engine.trace.max_ttl);
  o.tracer.filter.sports = {o.port};
  o.tracer.filter.requested_only = true;
  // A forwarded connection's server is another host: no client asks.
  o.tracer.filter.forwarded_unasked = forward;
  o.tracer.engine.max_flows = static_cast<std::uint32_t>(o.max_clients);

  sys::RuleSpec r;
  r.queue_id = o.tracer.queue.queue_id;
  r.sports = {o.port};
  r.out_interface = interface;
  r.forward = forward;
  r.probe_mark = o.tracer.probe_mark;
  r.nflog_group = o.tracer.nflog_group;
  // Clients may ask for mangle mode, whose evidence is the client's ACKs
  // (every one is logged of their connections alone, by their mark).
  r.log_all_peer_acks = allow_mangle;
  o.tracer.rules = r;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse(argc, argv);
  if (auto* exit = std::get_if<cli::Exit>(&parsed)) return cli::print_exit(*exit);
  auto& options = std::get<server::ServerOptions>(parsed);
  const cli::ErrorReporter fail("nfqtrace-server");
  auto started = cli::start_tool(options.results.log_file, fail);
  if (auto* status = std::get_if<int>(&started)) return *status;
  // Named, not a structured binding: clang 14 cannot capture those in lambdas.
  cli::ToolStart& tool = std::get<cli::ToolStart>(started);
  cli::ResultWriter& writer = tool.writer;
  sys::EventLoop& loop = tool.loop;
  cli::Results results;
  auto lookup = cli::AddressLookup::create(loop, options.lookup);
  if (!lookup) return fail(lookup.error());
  // First among the consumers: a name known by then goes with the result.
  const cli::AddressLookup& names = **lookup;
  results.add(std::move(*lookup));
  const cli::FormatContext context{options.results.meta, names.book()};
  if (auto error = cli::add_outputs(results, options.results.format, writer,
                                    options.results.files, context))
    return fail(*error, 2);
  auto server = server::Server::create(options, loop, results);
  if (!server) return fail(server.error());
  auto metrics = cli::serve_metrics(
      options.metrics, results, loop, [&server] { return (*server)->tracer(); },
      [&server] { return std::optional<std::uint64_t>((*server)->clients()); });
  if (!metrics) return fail(metrics.error());
  if (*metrics) (*metrics)->recorder()->set_lookup_source([&names] { return names.counts(); });
  if (auto s = sys::drop_privileges(options.user); !s) return fail(s.error());
  loop.on_signal([&](int) { loop.stop(); });
  fmt::print(stderr, "nfqtrace-server: listening on port {}\n", options.port);
  int status = 0;
  if (auto s = loop.run(); !s) status = fail(s.error());
  if (auto s = (*server)->shutdown(); !s) status = fail("removing rules: " + cli::explain(s.error()));
  if (const auto& fatal = (*server)->fatal()) status = fail(*fatal);
  results.finish();
  return status;
}
