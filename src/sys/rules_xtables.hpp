// The iptables/ip6tables back end. Per queue id, two chains in table mangle:
//   NFQTRACE-Q<id>-OUT, jumped to at the end of POSTROUTING: NFQUEUE
//   NFQTRACE-Q<id>-IN,  jumped to at the top of INPUT: NFLOG copies
// Every change is one `iptables-restore --noflush` transaction built from
// what `iptables-save -t mangle` shows, so leftovers of a killed run (a chain
// without jump, several copies of a jump) are cleaned in the same step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/rules.hpp"
#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::sys::xtables {

// iptables-save/-restore or their ip6tables twins, as installed.
struct Tools {
  std::string save_name, save_path;
  std::string restore_name, restore_path;
};
std::optional<Tools> find_tools(wire::Family family);

// Whether rules of this family can be set: tools present, the mangle table
// readable and, for IPv6, IPv6 enabled in the kernel. The Error says why not.
Status check_usable(wire::Family family);

std::string out_chain(std::uint16_t queue_id);  // NFQTRACE-Q<id>-OUT
std::string in_chain(std::uint16_t queue_id);   // NFQTRACE-Q<id>-IN

// What an earlier run with this queue id left in `iptables-save -t mangle`.
struct Leftovers {
  std::vector<std::string> chains;      // ours that exist
  std::vector<std::string> jump_rules;  // "-A CHAIN ... -j OURS" lines, every copy
  bool empty() const { return chains.empty() && jump_rules.empty(); }
};
Leftovers find_leftovers(std::string_view saved, std::uint16_t queue_id);

// iptables-restore --noflush input: clears `leftovers`, then adds the rules.
std::string install_script(const RuleSpec& spec, const Leftovers& leftovers,
                           wire::Family family = wire::Family::v4);
// iptables-restore --noflush input that removes `leftovers`.
std::string removal_script(const Leftovers& leftovers);

// Packets that matched our queue rules (queued, or let through while the
// queue was full), from the counters of `-save -c` output.
std::uint64_t queue_rule_packets(std::string_view saved_with_counters, std::uint16_t queue_id);
Result<std::uint64_t> queued_packets(std::uint16_t queue_id, wire::Family family);

Status install(const RuleSpec& spec, wire::Family family);
// Removes whatever of ours exists for this id; nothing there is fine.
Status remove(std::uint16_t queue_id, wire::Family family);

}  // namespace nfqtrace::sys::xtables
