#include "rules_xtables.hpp"

#include <charconv>

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

#include "command.hpp"
#include "nfqtrace/sys/nflog.hpp"
#include "rules_spec.hpp"

namespace nfqtrace::sys::xtables {
namespace {

// Copies of the peer's packets are cut to this many bytes: the IP and TCP
// headers with their options are all the engine reads.

std::string tool_prefix(wire::Family family) {
  return family == wire::Family::v4 ? "iptables" : "ip6tables";
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

Result<std::string> save(const Tools& tools) {
  auto out = run_command(tools.save_path, {tools.save_name, "-t", "mangle"});
  if (!out) return out.error();
  if (out->exit_code != 0) return Error{describe_failure(tools.save_name + " -t mangle", *out)};
  return std::move(out->out);
}

// The script line iptables-restore blames: "line 4 failed" (commit errors)
// or "Error occurred at line: 4" (parse errors).
std::optional<std::size_t> blamed_line(std::string_view err) {
  for (std::size_t pos = err.find("line"); pos != std::string_view::npos;
       pos = err.find("line", pos)) {
    pos += 4;
    while (pos < err.size() && (err[pos] == ':' || err[pos] == ' ')) ++pos;
    std::size_t number = 0, digits = 0;
    for (; pos < err.size() && err[pos] >= '0' && err[pos] <= '9' && digits < 7; ++pos, ++digits) {
      number = number * 10 + static_cast<std::size_t>(err[pos] - '0');
    }
    if (digits > 0) return number;
  }
  return std::nullopt;
}

Status restore(const Tools& tools, const std::string& script) {
  // --wait: the legacy variant shares a lock with every other iptables user.
  auto out = run_command(tools.restore_path, {tools.restore_name, "--wait=10", "--noflush"}, script);
  if (!out) return out.error();
  if (out->exit_code == 0) return Ok{};
  // "line 7 failed" alone does not say much; quote line 7.
  std::string message = describe_failure(tools.restore_name + " --noflush", *out);
  const auto lines = split(script, '\n');
  if (auto n = blamed_line(out->err); n && *n >= 1 && *n <= lines.size()) {
    message += " (script line " + std::to_string(*n) + ": " + std::string(lines[*n - 1]) + ")";
  }
  return Error{message};
}

// Reads the current state, makes a script from the leftovers found there
// (nullopt: nothing to do) and applies it. Tried twice: a change by someone
// else between our save and our restore makes the restore fail.
template <typename MakeScript>
Status apply(wire::Family family, std::uint16_t queue_id, MakeScript make_script) {
  const auto tools = find_tools(family);
  if (!tools) return Error{tool_prefix(family) + "-save or " + tool_prefix(family) + "-restore not found"};
  Status result = Ok{};
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto saved = save(*tools);
    if (!saved) return saved.error();
    const std::optional<std::string> script = make_script(find_leftovers(*saved, queue_id));
    if (!script) return Ok{};
    result = restore(*tools, *script);
    if (result) return result;
  }
  return result;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// -D for every jump (each -D removes one copy), -F for every chain.
std::string clearing_lines(const Leftovers& leftovers) {
  std::string lines;
  for (const std::string& rule : leftovers.jump_rules) lines += "-D" + rule.substr(2) + "\n";
  for (const std::string& chain : leftovers.chains) lines += "-F " + chain + "\n";
  return lines;
}

std::string address_match(const RuleSpec& spec, std::string_view option) {
  if (!spec.host) return "";
  return fmt::format(" {} {}/{}", option, spec.host->to_string(),
                     spec.host->family == wire::Family::v4 ? 32 : 128);
}

// " --dport 443", or with a local port " --sport 40000 --dport 443" (the
// peer's side mirrored: " --sport 443 --dport 40000"), in iptables-save's order.
std::string port_match(const RuleSpec& spec, std::string_view port_option, std::uint16_t port) {
  if (!spec.local_port) return fmt::format(" {} {}", port_option, port);
  if (port_option == "--dport") return fmt::format(" --sport {} --dport {}", *spec.local_port, port);
  return fmt::format(" --sport {} --dport {}", port, *spec.local_port);
}

// The selected connections' outgoing packets (one port of them), with
// `connmark` (a connmark match) and `flags` (after the ports, in the tcp
// match) narrowing it further. Written in iptables-save's own order, so
// that the saved rules read the same.
std::string outgoing_match(const RuleSpec& spec, std::string_view port_option, std::uint16_t port,
                           std::string_view connmark = "", std::string_view flags = "") {
  std::string rule = "-A " + out_chain(spec.queue_id) + address_match(spec, "-d");
  if (spec.out_interface) rule += " -o " + *spec.out_interface;
  // Our probes carry the mark and must go out untouched.
  rule += fmt::format(" -p tcp -m mark ! --mark {0:#x}/{0:#x}{1} -m tcp{2}{3}", spec.probe_mark,
                      connmark, port_match(spec, port_option, port), flags);
  // Only our own connections, unless --forward: POSTROUTING sees forwarded
  // ones too, and their probes' answers would go on to the inner host. Last,
  // as it costs a route lookup.
  if (!spec.forward) rule += " -m addrtype --src-type LOCAL";
  return rule;
}

// Copies an outgoing packet to us (dup mode), in place of queueing it.
std::string copy_target(const RuleSpec& spec) {
  return fmt::format(" -j NFLOG --nflog-prefix {} --nflog-group {} --nflog-size {} --nflog-threshold 1\n",
                     outgoing_log_prefix, spec.nflog_group, outgoing_copy_bytes);
}

std::string queue_rule(const RuleSpec& spec, std::string_view port_option, std::uint16_t port) {
  // --queue-bypass: with nobody reading the queue the packets still flow.
  const std::string queue = fmt::format(" -j NFQUEUE --queue-num {} --queue-bypass\n", spec.queue_id);
  if (!spec.copy_outgoing) return outgoing_match(spec, port_option, port) + queue;
  std::string rules;
  if (spec.queue_by_mark) {
    // A flow in mangle mode (its mark asks): queued, the others copied.
    rules = outgoing_match(spec, port_option, port,
                           fmt::format(" -m connmark --mark {:#x}/{:#x}", queued_mark(spec), all_mark_bits(spec))) +
            queue;
  }
  return rules + outgoing_match(spec, port_option, port) + copy_target(spec);
}

// A round waiting for the packet of its next wave (all three mark bits): that
// packet is copied to us, then the connection waits for the answers past us
// (bypass and round bits) without another copy. Only the selected
// connections: another instance's mark must stay as that instance set it.
std::string one_copy_rules(const RuleSpec& spec, std::string_view port_option, std::uint16_t port) {
  const std::uint32_t all_bits = all_mark_bits(spec);
  const std::string rule =
      outgoing_match(spec, port_option, port, fmt::format(" -m connmark --mark {0:#x}/{0:#x}", all_bits),
                     " --tcp-flags FIN,SYN,RST NONE");
  return rule + copy_target(spec) + rule +
         fmt::format(" -j CONNMARK --set-xmark {:#x}/{:#x}\n", spec.bypass_mark | spec.round_mark,
                     all_bits);
}

// The peer's packets: `port_option` is the mirror of the outgoing selection.
// No -i: replies may come back through another interface than -o.
std::string log_rules(const RuleSpec& spec, std::string_view port_option, std::uint16_t port) {
  const std::string peer = fmt::format("-A {}{} -p tcp", in_chain(spec.queue_id), address_match(spec, "-s"));
  const std::string ports = " -m tcp" + port_match(spec, port_option, port);
  const std::string log =
      fmt::format(" -j NFLOG --nflog-group {} --nflog-size {} --nflog-threshold 1\n",
                  spec.nflog_group, peer_copy_bytes);
  if (spec.log_all_peer_acks && !spec.queue_by_mark) return peer + ports + log;
  std::string every_ack, others;
  if (spec.log_all_peer_acks) {
    // Only a flow in mangle mode reads every acknowledgement.
    const std::string mark = fmt::format("--mark {:#x}/{:#x}", queued_mark(spec), all_mark_bits(spec));
    every_ack = peer + " -m connmark " + mark + ports + log;
    others = " -m connmark ! " + mark;
  }
  const std::string match = peer + others + ports;
  // FIN or RST, else SACK blocks (option 5): exclusive, so that a packet with
  // both is copied once (NFLOG does not end the chain).
  return every_ack + match + " ! --tcp-flags FIN,RST NONE" + log + match +
         " --tcp-option 5 --tcp-flags FIN,RST NONE" + log;
}

// Time-exceeded and destination-unreachable (not "packet too big", which
// ICMPv6 keeps apart and path MTU discovery needs) from anywhere (routers
// answer from their own addresses), that quote a TCP packet of ours: its
// destination port (`quoted_dport`) or source port. Errors about anything
// else never reach us, and stay for another instance's rules (with a local
// port, both quoted ports must match: the clients of one server each trace
// their own connection). The quoted ports, in iptables-save's spelling of
// u32: IPv4 skips both IP headers by their IHL; IPv6 takes them without
// extension headers (40 + 8 + 40).
std::string icmp_queue_rule(const RuleSpec& spec, wire::Family family, bool quoted_dport,
                            std::uint16_t port) {
  const std::string start = "-A " + in_chain(spec.queue_id);
  const std::string queue = fmt::format(" -j NFQUEUE --queue-num {} --queue-bypass\n", spec.queue_id);
  std::string port_word = quoted_dport ? "&0xffff" : ">>0x10";
  std::uint32_t value = port;
  if (spec.local_port && quoted_dport) {
    port_word = "";
    value = (std::uint32_t{*spec.local_port} << 16) | port;
  }
  std::string rules;
  if (family == wire::Family::v4) {
    for (const char* type : {"11", "3"})
      rules += fmt::format("{} -p icmp -m icmp --icmp-type {} -m u32 --u32 "
                           "\"0x0>>0x16&0x3c@0x8>>0x16&0x3c@0x8{}={:#x}\"{}",
                           start, type, port_word, value, queue);
  } else {
    for (const char* type : {"3", "1"})
      rules += fmt::format("{} -p ipv6-icmp -m icmp6 --icmpv6-type {} -m u32 --u32 \"0x58{}={:#x}\"{}",
                           start, type, port_word, value, queue);
  }
  return rules;
}

}  // namespace

std::optional<Tools> find_tools(wire::Family family) {
  const std::string prefix = tool_prefix(family);
  auto save_path = find_program(prefix + "-save");
  auto restore_path = find_program(prefix + "-restore");
  if (!save_path || !restore_path) return std::nullopt;
  return Tools{prefix + "-save", *save_path, prefix + "-restore", *restore_path};
}

Status check_usable(wire::Family family) {
  const auto tools = find_tools(family);
  if (!tools) return Error{tool_prefix(family) + "-save or " + tool_prefix(family) + "-restore not found"};
  // ip6tables-nft may still read an empty table when IPv6 is off; the
  // restore would then fail.
  if (family == wire::Family::v6 && ::access("/proc/sys/net/ipv6", F_OK) != 0) {
    return Error{"IPv6 is disabled in the kernel"};
  }
  auto saved = save(*tools);
  if (!saved) return saved.error();
  return Ok{};
}

std::uint64_t queue_rule_packets(std::string_view saved, std::uint16_t queue_id) {
  // Both chains: the queue numbers the ICMP errors it takes too.
  const std::string ours = "-A " + out_chain(queue_id) + " ";
  const std::string ours_in = "-A " + in_chain(queue_id) + " ";
  std::uint64_t total = 0;
  for (std::string_view line : split(saved, '\n')) {
    // "[packets:bytes] -A NFQTRACE-Q0-OUT ... -j NFQUEUE ..."
    if (line.empty() || line.front() != '[') continue;
    const auto close = line.find("] ");
    if (close == std::string_view::npos) continue;
    const std::string_view rule = line.substr(close + 2);
    if ((!rule.starts_with(ours) && !rule.starts_with(ours_in)) ||
        rule.find("-j NFQUEUE") == std::string_view::npos)
      continue;
    const std::string_view counts = line.substr(1, close - 1);
    std::uint64_t packets = 0;
    std::from_chars(counts.data(), counts.data() + counts.size(), packets);
    total += packets;
  }
  return total;
}

Result<std::uint64_t> queued_packets(std::uint16_t queue_id, wire::Family family) {
  const auto tools = find_tools(family);
  if (!tools) return Error{tool_prefix(family) + "-save not found"};
  auto out = run_command(tools->save_path, {tools->save_name, "-c", "-t", "mangle"});
  if (!out) return out.error();
  if (out->exit_code != 0) return Error{describe_failure(tools->save_name + " -c", *out)};
  return queue_rule_packets(out->out, queue_id);
}

std::string out_chain(std::uint16_t queue_id) { return fmt::format("NFQTRACE-Q{}-OUT", queue_id); }
std::string in_chain(std::uint16_t queue_id) { return fmt::format("NFQTRACE-Q{}-IN", queue_id); }

Leftovers find_leftovers(std::string_view saved, std::uint16_t queue_id) {
  const std::vector<std::string> ours{out_chain(queue_id), in_chain(queue_id)};
  const auto is_ours = [&](std::string_view name) {
    return std::find(ours.begin(), ours.end(), name) != ours.end();
  };
  Leftovers found;
  for (std::string_view line : split(saved, '\n')) {
    if (line.starts_with(':')) {  // ":CHAIN POLICY [counters]"
      const auto words = split(line.substr(1), ' ');
      if (!words.empty() && is_ours(words[0])) found.chains.emplace_back(words[0]);
    } else if (line.starts_with("-A ")) {
      const auto words = split(line, ' ');
      for (std::size_t i = 0; i + 1 < words.size(); ++i) {
        if ((words[i] == "-j" || words[i] == "-g") && is_ours(words[i + 1])) {
          found.jump_rules.emplace_back(line);
          break;
        }
      }
    }
  }
  return found;
}

std::string install_script(const RuleSpec& spec, const Leftovers& leftovers, wire::Family family) {
  const std::string out = out_chain(spec.queue_id), in = in_chain(spec.queue_id);
  std::string script = "*mangle\n";
  for (const std::string& chain : {out, in}) {
    if (!contains(leftovers.chains, chain)) script += ":" + chain + " - [0:0]\n";
  }
  script += clearing_lines(leftovers);
  const std::uint32_t all_bits = all_mark_bits(spec);
  if (one_copy_waves(spec)) {
    for (std::uint16_t port : unique_ports(spec.dports)) script += one_copy_rules(spec, "--dport", port);
    for (std::uint16_t port : unique_ports(spec.sports)) script += one_copy_rules(spec, "--sport", port);
  }
  if (spec.bypass_mark != 0 && spec.watch_mark != 0) {
    // A watched connection's packets are copied to us on the way out (and
    // then skip the queue below): we look for a retransmission.
    script += fmt::format(
        "-A {} -p tcp -m connmark --mark {:#x}/{:#x} -m tcp --tcp-flags FIN,SYN,RST NONE"
        " -j NFLOG --nflog-group {} --nflog-size {} --nflog-threshold 1\n",
        out, spec.bypass_mark | spec.watch_mark, all_bits, spec.nflog_group, peer_copy_bytes);
  }
  if (spec.bypass_mark != 0) {
    // First: a connection whose trace is over leaves at once, untouched,
    // but for its SYN, FIN and RST: we must see it end (and clear its mark,
    // which conntrack would otherwise keep for a new connection on the same
    // ports).
    // The peer's packets of a round waiting for answers (round_mark) are
    // still logged.
    for (const std::string& chain : {out, in})
      script += fmt::format(
          "-A {} -p tcp -m connmark --mark {:#x}/{:#x} -m tcp --tcp-flags FIN,SYN,RST NONE -j RETURN\n",
          chain, spec.bypass_mark,
          chain == in ? spec.bypass_mark | spec.round_mark : spec.bypass_mark);
  }
  for (std::uint16_t port : unique_ports(spec.dports)) script += queue_rule(spec, "--dport", port);
  for (std::uint16_t port : unique_ports(spec.sports)) script += queue_rule(spec, "--sport", port);
  for (std::uint16_t port : unique_ports(spec.dports)) script += log_rules(spec, "--sport", port);
  for (std::uint16_t port : unique_ports(spec.sports)) script += log_rules(spec, "--dport", port);
  if (spec.queue_icmp) {
    for (std::uint16_t port : unique_ports(spec.dports)) script += icmp_queue_rule(spec, family, true, port);
    for (std::uint16_t port : unique_ports(spec.sports)) script += icmp_queue_rule(spec, family, false, port);
  }
  // Last in POSTROUTING: an accept verdict from the queue ends the packet's
  // walk through this table, so rules after ours (TCPMSS, DSCP, ...) would be
  // skipped; last, they have run and we see the packet as it leaves.
  script += "-A POSTROUTING -p tcp -j " + out + "\n";
  // First in INPUT: NFLOG lets the packet go on, and no earlier ACCEPT can
  // hide the peer's packets from us.
  // --forward: a forwarded connection's peer packets and the routers'
  // answers to our probes (addressed to the inner host) pass FORWARD.
  for (const char* hook : {"INPUT", "FORWARD"}) {
    if (hook == std::string_view("FORWARD") && !spec.forward) continue;
    script += fmt::format("-I {} 1 -p tcp -j {}\n", hook, in);
    if (spec.queue_icmp)
      script += fmt::format("-I {} 1 -p {} -j {}\n", hook,
                            family == wire::Family::v4 ? "icmp" : "ipv6-icmp", in);
  }
  return script + "COMMIT\n";
}

std::string removal_script(const Leftovers& leftovers) {
  std::string script = "*mangle\n" + clearing_lines(leftovers);
  for (const std::string& chain : leftovers.chains) script += "-X " + chain + "\n";
  return script + "COMMIT\n";
}

Status install(const RuleSpec& spec, wire::Family family) {
  return apply(family, spec.queue_id, [&](const Leftovers& leftovers) -> std::optional<std::string> {
    return install_script(spec, leftovers, family);
  });
}

Status remove(std::uint16_t queue_id, wire::Family family) {
  if (!find_tools(family)) return Ok{};  // without the tools nobody set such rules
  return apply(family, queue_id, [](const Leftovers& leftovers) -> std::optional<std::string> {
    if (leftovers.empty()) return std::nullopt;
    return removal_script(leftovers);
  });
}

}  // namespace nfqtrace::sys::xtables
