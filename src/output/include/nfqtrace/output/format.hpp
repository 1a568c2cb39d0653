// Result formats: JSON Lines objects (json.cpp) and a traceroute-like text
// table (text.cpp). Pure functions of the results, shared by every tool.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "nfqtrace/core/result.hpp"

namespace nfqtrace::output {

// RFC 3339 UTC with microseconds: 2026-11-27T10:00:00.123456Z
std::string rfc3339(core::Duration since_epoch);
// Milliseconds rounded to the microsecond.
double to_ms(core::Duration d);

nlohmann::json flow_json(const core::FlowKey& flow);
// {"type":"hop", "flow", "round", "ttl", "addr", "rtt_ms", "time", "kind", ...}
nlohmann::json hop_json(const core::HopEvent& hop);
// {"type":"trace", "flow", "round", "mode", "start", "end", "reached", "reason", "hops": [...],
//  "middleboxes", "rewrites", "nat", "loss_from_ttl", "forward_hops", "return_hops"}
nlohmann::json trace_json(const core::TraceResult& trace);
// {"type":"path_change", "flow", "round", "previous_round", "changes": [{"ttl", "from", "to"}]}
nlohmann::json path_change_json(const core::PathChange& change);

// The trace as a table, one line per TTL, then what the path did to the
// connection in words; ending in a newline.
std::string trace_text(const core::TraceResult& trace);
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
