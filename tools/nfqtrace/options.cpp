#include "options.hpp"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>

namespace nfqtrace::cli {
namespace {

// "443,8443" -> {443, 8443}
std::optional<std::vector<std::uint16_t>> parse_ports(const std::string& text) {
  std::vector<std::uint16_t> ports;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || value == 0 ||
        value > 65535)
      return std::nullopt;
    ports.push_back(static_cast<std::uint16_t>(value));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ports;
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
  app.set_version_flag("--version", "nfqtrace 0.1.0");
  app.get_formatter()->column_width(32);

  Options o;
  auto& t = o.tracer.trace;
  std::string dports, sports, host, mode = "dup", format = "text";
  std::optional<std::string> interface;
  double timeout_s = 1.0, idle_s = 60.0;
  std::optional<double> repeat_s;
  unsigned max_ttl = 30, ttl_repeat = 3, gap_limit = 5;
  unsigned queue_id = 0;
  std::optional<unsigned> nflog_group;
  std::uint64_t count = 0;
  bool no_rules = false;
  std::string mark = "0x4e510000";

  app.add_option("--dport", dports, "trace outgoing connections to these ports (client): P[,P..]");
  app.add_option("--sport", sports, "trace outgoing packets from these ports (server): P[,P..]");
  app.add_option("--host", host, "only connections with this peer address");
  app.add_option("--interface", interface, "only packets leaving through this interface");
  app.add_option("--mode", mode, "dup: send TTL-limited copies (harmless); mangle: lower the TTL of originals")
      ->check(CLI::IsMember({"dup", "mangle"}))
      ->capture_default_str();
  app.add_option("--maxttl", max_ttl, "highest TTL / hop limit probed")->check(CLI::Range(1, 255))->capture_default_str();
  app.add_option("--ttlrepeat", ttl_repeat, "probes sent for each TTL")->check(CLI::Range(1, 10))->capture_default_str();
  app.add_option("--timeout", timeout_s, "seconds to wait for a probe's reply")->check(CLI::Range(0.001, 60.0))->capture_default_str();
  app.add_option("--gaplimit", gap_limit, "consecutive silent TTLs that end a trace")->check(CLI::Range(1, 255))->capture_default_str();
  app.add_option("--packetfreq", t.packet_freq, "packets of a flow that pass between two mangled ones (mangle mode); packets to wait for data to copy (dup mode)")
      ->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--repeat", repeat_s, "trace each open flow again every S seconds")->check(CLI::Range(0.01, 1e6));
  app.add_option("--max-flows", t.max_flows, "traces running at once")->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--idle-timeout", idle_s, "seconds of silence after which a flow counts as closed")->check(CLI::Range(0.1, 1e6))->capture_default_str();
  app.add_option("--count", count, "exit after N traces have ended")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  app.add_option("--format", format, "text or json (JSON Lines)")->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app.add_option("--log-file", o.log_file, "also append the results to FILE");
  app.add_option("--queue-id", queue_id, "NFQUEUE number")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--queue-size", o.tracer.queue.max_len, "queue capacity (packets)")->check(CLI::Range(1u, 10000000u))->capture_default_str();
  app.add_option("--nflog-group", nflog_group, "NFLOG group for the peer's packets (default 32768 + queue id)")->check(CLI::Range(1, 65535));
  app.add_option("--mark", mark, "packet mark bits of our own probes, excluded from the queue")->capture_default_str();
  app.add_flag("--no-rules", no_rules, "install no rules: listen on --queue-id, fed by your own rule");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return Exit{0, app.help()};
  } catch (const CLI::CallForVersion& e) {
    return Exit{0, "nfqtrace 0.1.0\n"};
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    return Exit{2, "nfqtrace: " + what + " (see --help)\n"};
  }

  auto bad = [](const std::string& msg) { return Exit{2, "nfqtrace: " + msg + " (see --help)\n"}; };
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

  std::uint32_t mark_bits = 0;
  {
    const char* begin = mark.c_str();
    int base = 10;
    if (mark.rfind("0x", 0) == 0 || mark.rfind("0X", 0) == 0) {
      begin += 2;
      base = 16;
    }
    auto [end, ec] = std::from_chars(begin, mark.c_str() + mark.size(), mark_bits, base);
    if (ec != std::errc() || end != mark.c_str() + mark.size() || mark_bits == 0)
      return bad("--mark: expected a non-zero number, e.g. 0x4e510000");
  }

  t.mode = mode == "mangle" ? core::Mode::mangle : core::Mode::dup;
  t.max_ttl = static_cast<std::uint8_t>(max_ttl);
  t.ttl_repeat = static_cast<std::uint8_t>(ttl_repeat);
  t.gap_limit = static_cast<std::uint8_t>(gap_limit);
  t.timeout = seconds(timeout_s);
  t.idle_timeout = seconds(idle_s);
  if (repeat_s) t.repeat = seconds(*repeat_s);
  t.seed = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()) | 1u;
  if (count > 0) o.tracer.stop_after_traces = count;
  o.format = format == "json" ? Format::json : Format::text;

  o.tracer.queue.queue_id = static_cast<std::uint16_t>(queue_id);
  o.tracer.probe_mark = mark_bits;
  o.tracer.nflog_group = static_cast<std::uint16_t>(nflog_group ? *nflog_group : 32768u + queue_id % 32768u);
  if (!no_rules) {
    sys::RuleSpec r;
    r.queue_id = o.tracer.queue.queue_id;
    r.dports = filter.dports;
    r.sports = filter.sports;
    r.host = filter.host;
    r.out_interface = interface;
    r.probe_mark = mark_bits;
    r.nflog_group = o.tracer.nflog_group;
    r.log_all_peer_acks = t.mode == core::Mode::mangle;
    o.tracer.rules = r;
  }
  return o;
}

}  // namespace nfqtrace::cli
