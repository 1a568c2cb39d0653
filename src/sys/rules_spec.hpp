// What every rules back end needs from a RuleSpec: input checked before any
// command runs (so mistakes read as plain sentences, not as a failing line
// of an iptables-restore script), and the address families concerned.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/rules.hpp"

namespace nfqtrace::sys {

Status validate(const RuleSpec& spec);

struct Families {
  bool v4 = false, v6 = false;
};

// The host's family when a host is set, else the families the spec enables.
Families wanted_families(const RuleSpec& spec);

// Sorted, without duplicates: the same port twice would double the rules.
std::vector<std::uint16_t> unique_ports(std::vector<std::uint16_t> ports);

// `text` fit for a one-line message: control bytes become '?'.
std::string printable(std::string_view text);

}  // namespace nfqtrace::sys
