// The native nftables back end: one table per queue id, inet family,
//   table inet nfqtrace_q<id> { chain out (postrouting) ; chain in (input) }
// at priority mangle. Being our own table, it is replaced and removed whole,
// atomically, by one `nft -f -` transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/rules.hpp"
#include "rules_spec.hpp"

namespace nfqtrace::sys::nft {

std::string table_name(std::uint16_t queue_id);  // nfqtrace_q<id>

// Whether nft is installed and the kernel takes the queue expression
// (nft_queue): nft checks (-c: sent to the kernel, never committed) a
// throwaway table holding a queue rule.
bool queue_supported();

// The nft script replacing the table of spec.queue_id by the rules for
// `families`.
std::string install_script(const RuleSpec& spec, Families families);

Status install(const RuleSpec& spec, Families families);

// Packets that matched the queue rules (each has a counter) of an
// `nft list table` listing of our table: those queued, and those let through
// untraced while the queue was full (fail-open).
std::uint64_t queue_rule_packets(std::string_view listing);
// The same, read from the kernel; nullopt when there is no such table (or
// no nft).
Result<std::optional<std::uint64_t>> queued_packets(std::uint16_t queue_id);

// Deletes the table if it exists; no nft, or no table, is fine.
Status remove(std::uint16_t queue_id);

}  // namespace nfqtrace::sys::nft
