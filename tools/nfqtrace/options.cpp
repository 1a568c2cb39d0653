#include "options.hpp"

#include <charconv>

namespace nfqtrace::cli {
namespace {

// "443,8443" -> {443, 8443}
std::optional<std::vector<std::uint16_t>> parse_ports(const std::string& text) {
  std::vector<std::uint16_t> ports;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || value == 0 ||
        value > 65535)
      return std::nullopt;
    ports.push_back(static_cast<std::uint16_t>(value));
    if (comma == std::string::npos) return ports;
    start = comma + 1;
  }
}

core::Duration seconds(double s) {
  return std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(s));
}

}  // namespace

std::variant<Options, Exit> parse_options(int argc, char** argv) {
  CLI::App app{
      "nfqtrace: parasitic traceroute of live TCP connections.\n"
      "Traces the path of existing connections from their own packets (NFQUEUE),\n"
      "forward on a client (--dport), reverse on a server (--sport)."};
  app.get_formatter()->column_width(32);

  Options o;
  SharedOptions shared;
  std::string dports, sports, host;
  std::optional<std::string> interface;
  double idle_s = seconds_of(engine_defaults.idle_timeout);
  std::optional<double> repeat_s;
  std::uint64_t count = 0;
  bool no_rules = false;
  bool forward = false;
  std::string trigger = "start";
  core::EngineConfig& e = o.tracer.engine;

  app.add_option("--dport", dports, "trace outgoing connections to these ports (client): P[,P..]");
  app.add_option("--sport", sports, "trace outgoing packets from these ports (server): P[,P..]");
  app.add_option("--host", host, "only connections with this peer address");
  app.add_option("--interface", interface, "only packets leaving through this interface");
  add_shared_options(app, shared);
  add_live_option(app, shared);
  add_metrics_options(app, o.metrics);
  add_lookup_options(app, o.lookup);
  app.add_option("--repeat", repeat_s, "trace each open flow again every S seconds")->check(CLI::Range(0.01, 1e6));
  app.add_option("--max-flows", e.max_flows, "traces running at once")->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--idle-timeout", idle_s, "seconds of silence after which a flow counts as closed")->check(CLI::Range(0.1, 1e6))->capture_default_str();
  app.add_option("--count", count, "exit after N traces have ended")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  app.add_option("--sample", e.sample, "trace only this fraction of the connections (busy servers)")
      ->check(CLI::Range(0.000001, 1.0))->capture_default_str();
  app.add_option("--trigger", trigger,
                 "start: trace a connection from its first data; retransmit: from the moment its "
                 "sender retransmits (with --repeat at most once an interval, else once)")
      ->check(CLI::IsMember({"start", "retransmit"}))->capture_default_str();
  app.add_flag("--forward", forward,
               "trace connections this host forwards (a gateway): probes carry their own "
               "addresses and leave as they do; the routers' answers are kept from the inner host");
  app.add_flag("--no-rules", no_rules, "install no rules: listen on --queue-id, fed by your own rule");

  if (auto exit = parse_or_exit(app, argc, argv, "nfqtrace")) return *exit;

  auto bad = [](const std::string& msg) { return Exit{2, "nfqtrace: " + msg + " (see --help)\n"}; };
  if (auto error = apply(shared, o.tracer)) return bad(*error);
  core::FlowFilter& filter = o.tracer.filter;
  if (!dports.empty()) {
    auto p = parse_ports(dports);
    if (!p) return bad("--dport: expected ports 1-65535 separated by commas, got '" + dports + "'");
    filter.dports = *p;
  }
  if (!sports.empty()) {
    auto p = parse_ports(sports);
    if (!p) return bad("--sport: expected ports 1-65535 separated by commas, got '" + sports + "'");
    filter.sports = *p;
  }
  if (!host.empty()) {
    filter.host = wire::Address::parse(host);
    if (!filter.host) return bad("--host: not an IPv4 or IPv6 address: '" + host + "'");
  }
  if (filter.dports.empty() && filter.sports.empty() && !no_rules)
    return bad("say which connections to trace: --dport (client) or --sport (server)");
  if (interface && (interface->empty() || interface->size() >= 16))
    return bad("--interface: not an interface name: '" + *interface + "'");

  e.idle_timeout = seconds(idle_s);
  if (repeat_s) e.trace.repeat = seconds(*repeat_s);
  if (trigger == "retransmit") e.trigger = core::Trigger::retransmit;
  if (count > 0) o.tracer.stop_after_traces = count;
  auto results = result_options(app, shared, "nfqtrace");
  if (auto* error = std::get_if<std::string>(&results)) return bad(*error);
  o.results = std::get<ResultOptions>(std::move(results));
  o.user = shared.user;
  if (!no_rules) {
    sys::RuleSpec r;
    r.queue_id = o.tracer.queue.queue_id;
    r.dports = filter.dports;
    r.sports = filter.sports;
    r.host = filter.host;
    r.out_interface = interface;
    r.probe_mark = o.tracer.probe_mark;
    r.nflog_group = o.tracer.nflog_group;
    r.log_all_peer_acks = e.trace.mode == core::Mode::mangle;
    r.forward = forward;
    o.tracer.rules = r;
  }
  return o;
}

}  // namespace nfqtrace::cli
