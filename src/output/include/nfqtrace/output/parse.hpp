// Reading nfqtrace's JSON back: the inverse of output::hop_json,
// output::trace_json and output::flow_json, for programs that receive
// results from another nfqtrace (the cooperating client reads the server's).
//
// Strict about what the writers always write, lenient about extra fields.
// JSON carries only wall-clock times, so a parsed core::Instant has
// mono == wall: durations between two parsed instants stay right.
// Never throws; on failure the error names the field and the problem, e.g.
// "hops[2].replies[0].rtt_ms: must be a non-negative number".
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "nfqtrace/base/expected.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::output {

// What was read, or the problem that stopped the reading.
template <typename T>
using Read = Expected<T, std::string>;

Read<core::FlowKey> flow_from_json(const nlohmann::json& j);
Read<core::HopEvent> hop_from_json(const nlohmann::json& j);
Read<core::TraceResult> trace_from_json(const nlohmann::json& j);

// "dup" / "mangle", as core::to_string(Mode) writes them.
std::optional<core::Mode> mode_from_string(std::string_view text);

// RFC 3339 ("2026-11-27T10:00:00.123456Z", up to 9 fraction digits, "Z" or
// "+hh:mm"/"-hh:mm") to the time since the Unix epoch; nullopt if malformed.
std::optional<core::Duration> parse_rfc3339(std::string_view text);

}  // namespace nfqtrace::output
