// Result formats: JSON Lines objects (json.cpp) and a traceroute-like text
// table (text.cpp). Pure functions of the results, shared by every tool.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "nfqtrace/core/result.hpp"
#include "nfqtrace/output/address_book.hpp"

namespace nfqtrace::output {

// RFC 3339 UTC with microseconds: 2026-11-27T10:00:00.123456Z
std::string rfc3339(core::Duration since_epoch);
// Milliseconds rounded to the microsecond.
double to_ms(core::Duration d);

nlohmann::json flow_json(const core::FlowKey& flow);
// `book`, when given, adds what is known of each reply's address at the
// time: "name" (reverse DNS), "asn" and "as_name", each only when known.
// {"type":"hop", "flow", "round", "ttl", "addr", "rtt_ms", "time", "kind", ...}
nlohmann::json hop_json(const core::HopEvent& hop, const AddressBook* book = nullptr);
// {"type":"trace", "flow", "round", "mode", "start", "end", "reached", "reason", "hops": [...],
//  "middleboxes", "rewrites", "nat", "loss_from_ttl", "forward_hops", "return_hops"}
nlohmann::json trace_json(const core::TraceResult& trace, const AddressBook* book = nullptr);
// {"type":"path_change", "flow", "round", "previous_round", "changes": [{"ttl", "from", "to"}]}
nlohmann::json path_change_json(const core::PathChange& change);

// The trace as a table, one line per TTL, then what the path did to the
// connection in words; ending in a newline. With `book`, an address is
// shown as "name (addr)" when its name is known, followed by its AS when
// known, as traceroute -A does: "r1.example (198.18.1.2) [AS64500]".
std::string trace_text(const core::TraceResult& trace, const AddressBook* book = nullptr);
// What the path did to the connection, in words, a line each (indented);
// empty when it did nothing we saw.
std::string findings_text(const core::TraceResult& trace);
// One line: the TTLs whose routers changed since the flow's last round.
std::string path_change_text(const core::PathChange& change);

// "10.0.0.2:41234 -> 192.0.2.7:443" ([v6]:port for IPv6)
std::string flow_text(const core::FlowKey& flow);
// "10.0.0.2:41234", "[2001:db8::2]:41234"
std::string endpoint_text(const wire::Address& addr, std::uint16_t port);

}  // namespace nfqtrace::output
