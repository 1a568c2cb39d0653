// Result formats: JSON Lines objects and a traceroute-like text table.
// Pure functions of the results, shared by every tool.
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
// {"type":"trace", "flow", "round", "mode", "start", "end", "reached", "reason", "hops": [...]}
nlohmann::json trace_json(const core::TraceResult& trace);

// The trace as a table, one line per TTL, ending in a newline.
std::string trace_text(const core::TraceResult& trace);

// "10.0.0.2:41234 -> 192.0.2.7:443" ([v6]:port for IPv6)
std::string flow_text(const core::FlowKey& flow);

}  // namespace nfqtrace::output
