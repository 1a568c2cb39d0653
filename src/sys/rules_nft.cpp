#include "rules_nft.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <vector>

#include "command.hpp"
#include "nfqtrace/sys/nflog.hpp"

namespace nfqtrace::sys::nft {
namespace {


// "80" or "{ 80, 443 }".
std::string port_set(const std::vector<std::uint16_t>& ports) {
  if (ports.size() == 1) return std::to_string(ports.front());
  return fmt::format("{{ {} }}", fmt::join(ports, ", "));
}

// What narrows both chains to the spec's peer: its address when set, else
// the family when only one is wanted.
std::string peer_match(const RuleSpec& spec, Families families, std::string_view direction) {
  if (spec.host) {
    const bool v4 = spec.host->family == wire::Family::v4;
    return fmt::format("{} {} {} ", v4 ? "ip" : "ip6", direction, spec.host->to_string());
  }
  if (families.v4 && !families.v6) return "meta nfproto ipv4 ";
  if (families.v6 && !families.v4) return "meta nfproto ipv6 ";
  return "";
}

// The selected connections' outgoing packets, with `narrower` (more
// matches) before the costly route lookup.
std::string outgoing_match(const RuleSpec& spec, Families families, std::string_view port_match,
                           const std::vector<std::uint16_t>& ports, std::string_view narrower = "") {
  std::string rule = "\t\t" + peer_match(spec, families, "daddr");
  if (spec.out_interface) rule += "oifname \"" + *spec.out_interface + "\" ";
  // Probes carry the mark and must go out untouched.
  const std::string local =
      spec.local_port ? fmt::format("tcp sport {} ", *spec.local_port) : std::string();
  // Only our own connections, unless --forward: postrouting sees forwarded
  // ones too, and their probes' answers would go on to the inner host. Last,
  // as it costs a route lookup.
  const std::string own = spec.forward ? "" : "fib saddr type local ";
  return rule + fmt::format("meta mark & {0:#x} != {0:#x} {1}{2} {3} {4}{5}", spec.probe_mark, local,
                            port_match, port_set(ports), narrower, own);
}

// Copies an outgoing packet to us (dup mode), in place of queueing it.
std::string copy_statement(const RuleSpec& spec) {
  return fmt::format("log prefix \"{}\" group {} snaplen {} queue-threshold 1", outgoing_log_prefix,
                     spec.nflog_group, outgoing_copy_bytes);
}

std::string queue_rule(const RuleSpec& spec, Families families, std::string_view port_match,
                       const std::vector<std::uint16_t>& ports) {
  // Bypass: with nobody reading the queue the packets still flow. The
  // counter counts every packet sent to the queue, also those let through
  // while it was full: the rule keeper reports those (queue_rule_packets).
  const std::string queue = fmt::format("counter queue num {} bypass\n", spec.queue_id);
  if (!spec.copy_outgoing) return outgoing_match(spec, families, port_match, ports) + queue;
  std::string rules;
  if (spec.queue_by_mark) {
    // A flow in mangle mode (its mark asks): queued, the others copied.
    rules = outgoing_match(spec, families, port_match, ports,
                           fmt::format("ct mark & {:#x} == {:#x} ", all_mark_bits(spec), queued_mark(spec))) +
            queue;
  }
  return rules + outgoing_match(spec, families, port_match, ports) + copy_statement(spec) + "\n";
}

// A round waiting for the packet of its next wave (all three mark bits): that
// packet is copied to us, then the connection waits for the answers past us
// (the watch bit cleared: bypass and round) without another copy. Only the
// selected connections: another instance's mark must stay as it set it.
std::string one_copy_rule(const RuleSpec& spec, Families families, std::string_view port_match,
                          const std::vector<std::uint16_t>& ports) {
  const std::uint32_t all_bits = all_mark_bits(spec);
  const std::string marked =
      fmt::format("ct mark & {0:#x} == {0:#x} tcp flags & (syn | fin | rst) == 0 ", all_bits);
  return outgoing_match(spec, families, port_match, ports, marked) + copy_statement(spec) +
         fmt::format(" ct mark set ct mark & {:#x}\n", ~spec.watch_mark);
}

// The peer's packets; `port_match` mirrors the outgoing selection. No iifname:
// replies may come back through another interface.
std::string log_rules(const RuleSpec& spec, Families families, std::string_view port_match,
                      const std::vector<std::uint16_t>& ports) {
  std::string match =
      "\t\t" + peer_match(spec, families, "saddr") + std::string(port_match) + " " + port_set(ports);
  if (spec.local_port) match += fmt::format(" tcp dport {}", *spec.local_port);
  const std::string log = fmt::format(" log group {} snaplen {} queue-threshold 1\n",
                                      spec.nflog_group, peer_copy_bytes);
  if (spec.log_all_peer_acks && !spec.queue_by_mark) return match + log;
  std::string every_ack;
  if (spec.log_all_peer_acks) {
    // Only a flow in mangle mode reads every acknowledgement.
    const auto queued = [&](std::string_view is) {
      return fmt::format(" ct mark & {:#x} {} {:#x}", all_mark_bits(spec), is, queued_mark(spec));
    };
    every_ack = match + queued("==") + log;
    match += queued("!=");
  }
  // FIN or RST, else SACK blocks: exclusive, so a packet with both is copied once.
  return every_ack + match + " tcp flags & (fin | rst) != 0" + log + match +
         " tcp flags & (fin | rst) == 0 tcp option sack exists" + log;
}

Status run_script(const std::string& nft_path, const std::string& script) {
  auto out = run_command(nft_path, {"nft", "-f", "-"}, script);
  if (!out) return out.error();
  if (out->exit_code != 0) return Error{describe_failure("nft -f -", *out)};
  return Ok{};
}

// The words of a line, split at spaces and tabs.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> found;
  std::size_t at = 0;
  while (at < line.size()) {
    const std::size_t start = line.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    std::size_t end = line.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = line.size();
    found.push_back(line.substr(start, end - start));
    at = end;
  }
  return found;
}

}  // namespace

std::string table_name(std::uint16_t queue_id) { return fmt::format("nfqtrace_q{}", queue_id); }

bool queue_supported() {
  const auto nft = find_program("nft");
  if (!nft) return false;
  static constexpr std::string_view probe =
      "add table inet nfqtrace_probe\n"
      "add chain inet nfqtrace_probe out { type filter hook postrouting priority mangle; }\n"
      "add rule inet nfqtrace_probe out tcp dport 9 queue num 0 bypass\n";
  auto out = run_command(*nft, {"nft", "--check", "-f", "-"}, probe);
  return out && out->exit_code == 0;
}

std::string install_script(const RuleSpec& spec, Families families) {
  const std::string table = "inet " + table_name(spec.queue_id);
  const auto dports = unique_ports(spec.dports), sports = unique_ports(spec.sports);
  // add + delete first: the table is replaced whether or not it exists.
  std::string script = "add table " + table + "\ndelete table " + table + "\n";
  script += "table " + table + " {\n";
  // First in each chain: a connection whose trace is over leaves at once,
  // but for its SYN, FIN and RST (we must see it end and clear its mark).
  // (In chain in, not a round waiting for answers: round_mark clear.)
  const auto bypass_rule = [&](std::uint32_t mask) {
    return spec.bypass_mark != 0
               ? fmt::format("\t\tct mark & {:#x} == {:#x} tcp flags & (syn | fin | rst) == 0 return\n",
                             mask, spec.bypass_mark)
               : std::string();
  };
  const std::string bypass = bypass_rule(spec.bypass_mark);
  const std::string bypass_in = bypass_rule(spec.bypass_mark | spec.round_mark);
  script += "\tchain out {\n\t\ttype filter hook postrouting priority mangle; policy accept;\n";
  const std::uint32_t all_bits = all_mark_bits(spec);
  if (one_copy_waves(spec)) {
    if (!dports.empty()) script += one_copy_rule(spec, families, "tcp dport", dports);
    if (!sports.empty()) script += one_copy_rule(spec, families, "tcp sport", sports);
  }
  if (spec.bypass_mark != 0 && spec.watch_mark != 0) {
    // A watched connection's packets are copied to us on the way out (and
    // then skip the queue): we look for a retransmission.
    script += fmt::format(
        "\t\tct mark & {0:#x} == {1:#x} tcp flags & (syn | fin | rst) == 0 log group {2} "
        "snaplen {3} queue-threshold 1\n",
        all_bits, spec.bypass_mark | spec.watch_mark, spec.nflog_group, peer_copy_bytes);
  }
  script += bypass;
  if (!dports.empty()) script += queue_rule(spec, families, "tcp dport", dports);
  if (!sports.empty()) script += queue_rule(spec, families, "tcp sport", sports);
  // What reaches us of the peer: at input, and (--forward) for a connection
  // this host forwards, at forward: the same rules in both chains.
  std::string peer = bypass_in;
  if (!dports.empty()) peer += log_rules(spec, families, "tcp sport", dports);
  if (!sports.empty()) peer += log_rules(spec, families, "tcp dport", sports);
  if (spec.queue_icmp) {
    // Errors from routers, so from any address; not "packet too big"; only
    // those quoting our ports (a quoted IPv4 header without options; IPv6
    // without extension headers): TCP starts 28 (IPv4) or 48 bytes into
    // the ICMP message.
    const std::string queue = fmt::format(" counter queue num {} bypass\n", spec.queue_id);
    const auto quoting = [&](int tcp_at, bool dport, const std::vector<std::uint16_t>& ports) {
      std::string match = fmt::format(" @th,{},16 {}", (tcp_at + (dport ? 2 : 0)) * 8, port_set(ports));
      // The clients of one server each trace their own connection.
      if (spec.local_port && dport) match = fmt::format(" @th,{},16 {}", tcp_at * 8, *spec.local_port) + match;
      return match;
    };
    for (const bool dport : {true, false}) {
      const auto& ports = dport ? dports : sports;
      if (ports.empty()) continue;
      if (families.v4)
        peer += "\t\tmeta l4proto icmp icmp type { time-exceeded, destination-unreachable }" +
                quoting(28, dport, ports) + queue;
      if (families.v6)
        peer += "\t\tmeta l4proto ipv6-icmp icmpv6 type { time-exceeded, destination-unreachable }" +
                quoting(48, dport, ports) + queue;
    }
  }
  script += "\t}\n\tchain in {\n\t\ttype filter hook input priority mangle; policy accept;\n" + peer;
  if (spec.forward)
    script += "\t}\n\tchain forwarded {\n\t\ttype filter hook forward priority mangle; policy accept;\n" + peer;
  return script + "\t}\n}\n";
}

Status install(const RuleSpec& spec, Families families) {
  const auto nft = find_program("nft");
  if (!nft) return Error{"nft not found"};
  return run_script(*nft, install_script(spec, families));
}

std::uint64_t queue_rule_packets(std::string_view listing) {
  // table inet nfqtrace_q0 {
  // 	chain out {
  // 		... tcp dport 80 counter packets 12 bytes 3456 queue flags bypass to 0
  // (older nft: "queue num 0 bypass"). The queue rules of both chains count
  // (the queue numbers the ICMP errors it takes too); "queue-threshold" of a
  // log rule is another word.
  std::uint64_t total = 0;
  std::size_t start = 0;
  while (start < listing.size()) {
    std::size_t end = listing.find('\n', start);
    if (end == std::string_view::npos) end = listing.size();
    const auto line = words(listing.substr(start, end - start));
    start = end + 1;
    if (std::find(line.begin(), line.end(), "queue") == line.end()) continue;
    for (std::size_t i = 0; i + 2 < line.size(); ++i) {
      if (line[i] != "counter" || line[i + 1] != "packets") continue;
      std::uint64_t packets = 0;
      const std::string_view n = line[i + 2];
      if (std::from_chars(n.data(), n.data() + n.size(), packets).ec == std::errc{}) total += packets;
      break;
    }
  }
  return total;
}

Result<std::optional<std::uint64_t>> queued_packets(std::uint16_t queue_id) {
  const auto nft = find_program("nft");
  if (!nft) return std::optional<std::uint64_t>{};
  auto listed = run_command(*nft, {"nft", "list", "table", "inet", table_name(queue_id)});
  if (!listed) return listed.error();
  // No such table (or nf_tables unusable, so no table of ours either).
  if (listed->exit_code != 0) return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>{queue_rule_packets(listed->out)};
}

Status remove(std::uint16_t queue_id) {
  const auto nft = find_program("nft");
  if (!nft) return Ok{};
  const std::string table = "inet " + table_name(queue_id);
  // Fails when the table is absent, or when nf_tables is unusable, in which
  // case no table of ours can exist either.
  auto listed = run_command(*nft, {"nft", "list", "table", "inet", table_name(queue_id)});
  if (!listed) return listed.error();
  if (listed->exit_code != 0) return Ok{};
  // add + delete: still right if someone deleted it since we looked.
  return run_script(*nft, "add table " + table + "\ndelete table " + table + "\n");
}

}  // namespace nfqtrace::sys::nft
