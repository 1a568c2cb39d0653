#include "params_json.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "nfqtrace/output/parse.hpp"

namespace nfqtrace::coop {
namespace {

using nlohmann::json;

std::optional<std::uint64_t> as_unsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  return std::nullopt;
}

// Seconds, possibly fractional, to nanoseconds; saturating, so that an
// absurd timeout is clamped by the server instead of overflowing here.
core::Duration from_seconds(double seconds) {
  constexpr double max_seconds = 9.2e9;  // just below the range of int64 nanoseconds
  if (seconds >= max_seconds) return core::Duration::max();
  return core::Duration(std::llround(seconds * 1e9));
}

}  // namespace

json params_to_json(const TraceRequest& p) {
  json j = json::object();
  if (p.mode) j["mode"] = std::string(core::to_string(*p.mode));
  if (p.packet_freq) j["packetfreq"] = *p.packet_freq;
  if (p.max_ttl) j["maxttl"] = *p.max_ttl;
  if (p.ttl_repeat) j["ttlrepeat"] = *p.ttl_repeat;
  if (p.timeout) j["timeout"] = std::chrono::duration<double>(*p.timeout).count();
  if (p.gap_limit) j["gaplimit"] = *p.gap_limit;
  return j;
}

Expected<TraceRequest, std::string> params_from_json(const json& j) {
  if (!j.is_object()) return "params: must be an object";
  TraceRequest p;
  const auto present = [&j](const char* key) -> const json* {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };

  if (const json* mode = present("mode")) {
    const auto m = mode->is_string() ? output::mode_from_string(mode->get_ref<const std::string&>())
                                     : std::nullopt;
    if (!m) return "params.mode: must be \"dup\" or \"mangle\"";
    p.mode = m;
  }

  const std::pair<const char*, std::optional<std::uint64_t> TraceRequest::*> counts[] = {
      {"packetfreq", &TraceRequest::packet_freq},
      {"maxttl", &TraceRequest::max_ttl},
      {"ttlrepeat", &TraceRequest::ttl_repeat},
      {"gaplimit", &TraceRequest::gap_limit},
  };
  for (const auto& [key, field] : counts) {
    const json* v = present(key);
    if (!v) continue;
    const auto n = as_unsigned(*v);
    if (!n) return fmt::format("params.{}: must be a non-negative integer", key);
    p.*field = *n;
  }

  if (const json* timeout = present("timeout")) {
    if (!timeout->is_number() || !(timeout->get<double>() >= 0))
      return "params.timeout: must be a non-negative number of seconds";
    p.timeout = from_seconds(timeout->get<double>());
  }
  return p;
}

}  // namespace nfqtrace::coop
