#include "rules_spec.hpp"

#include <fmt/format.h>
#include <net/if.h>

#include <algorithm>

namespace nfqtrace::sys {
namespace {

// Messages are built with fmt: GCC 12 at -O3 takes `"\"" + std::string`
// for an overlapping memcpy (-Wrestrict, GCC bug 105329).
Status validate_interface(const std::string& name) {
  const std::string shown = fmt::format("\"{}\"", printable(name));
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return Error{fmt::format("invalid interface name {}: must be 1 to {} characters", shown,
                             IFNAMSIZ - 1)};
  }
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    // Wildcards ('+' for iptables, '*' for nft) are refused rather than
    // translated: a traceroute follows one connection, on one interface.
    // Quotes and backslashes would break the scripts fed to the tools.
    if (u <= ' ' || u >= 0x7f || c == '/' || c == '"' || c == '\'' || c == '\\' || c == '+' ||
        c == '*') {
      return Error{fmt::format("invalid interface name {}: no spaces, quotes, '/', '+' or '*'",
                               shown)};
    }
  }
  // The tools accept any name, even of no interface; a typo would then make
  // the trace wait forever for packets, so insist that it exists.
  if (::if_nametoindex(name.c_str()) == 0)
    return Error{fmt::format("no network interface named {}", shown)};
  return Ok{};
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < ' ' || u == 0x7f) c = '?';
  }
  return out;
}

Status validate(const RuleSpec& spec) {
  if (spec.dports.empty() && spec.sports.empty()) {
    return Error{"no connection selected: give at least one destination or source port"};
  }
  const auto zero = [](std::uint16_t port) { return port == 0; };
  if (std::any_of(spec.dports.begin(), spec.dports.end(), zero) ||
      std::any_of(spec.sports.begin(), spec.sports.end(), zero)) {
    return Error{"TCP port 0 cannot be selected"};
  }
  if (spec.local_port && (*spec.local_port == 0 || spec.dports.empty() || !spec.sports.empty())) {
    return Error{"a local port selects one connection: it needs destination ports only"};
  }
  // A zero mask would make the "not a probe" test fail for every packet, so
  // nothing would ever be queued.
  if (spec.probe_mark == 0) return Error{"the probe mark must have at least one bit set"};
  // Without both bits, the mark of a queued flow would be every unmarked one's.
  if (spec.queue_by_mark && (!spec.copy_outgoing || spec.watch_mark == 0 || spec.round_mark == 0))
    return Error{"queueing flows by their mark needs copies of the others and two mark bits"};
  if (!spec.ipv4 && !spec.ipv6) return Error{"neither IPv4 nor IPv6 is enabled"};
  if (spec.host) {
    const bool v6 = spec.host->family == wire::Family::v6;
    if (v6 ? !spec.ipv6 : !spec.ipv4) {
      return Error{"host " + spec.host->to_string() + " is " + (v6 ? "IPv6" : "IPv4") +
                   ", which is disabled"};
    }
  }
  if (spec.out_interface) {
    if (auto ok = validate_interface(*spec.out_interface); !ok) return ok;
  }
  return Ok{};
}

Families wanted_families(const RuleSpec& spec) {
  if (spec.host) {
    const bool v6 = spec.host->family == wire::Family::v6;
    return Families{!v6, v6};
  }
  return Families{spec.ipv4, spec.ipv6};
}

bool one_copy_waves(const RuleSpec& spec) {
  return spec.copy_outgoing && spec.bypass_mark != 0 && spec.watch_mark != 0 && spec.round_mark != 0;
}

std::uint32_t all_mark_bits(const RuleSpec& spec) {
  return spec.bypass_mark | spec.watch_mark | spec.round_mark;
}

std::uint32_t queued_mark(const RuleSpec& spec) { return spec.watch_mark | spec.round_mark; }

std::vector<std::uint16_t> unique_ports(std::vector<std::uint16_t> ports) {
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

}  // namespace nfqtrace::sys
