#include "nfqtrace/coop/limits.hpp"

#include <algorithm>

namespace nfqtrace::coop {
namespace {

// std::clamp, except that inconsistent limits (low above high) give `low`
// instead of undefined behaviour.
template <typename T>
T bounded(T value, T low, T high) {
  return std::max(low, std::min(value, high));
}

template <typename Narrow>
Narrow count(const std::optional<std::uint64_t>& requested, Narrow fallback, std::uint64_t low,
             std::uint64_t high) {
  return static_cast<Narrow>(bounded<std::uint64_t>(requested.value_or(fallback), low, high));
}

}  // namespace

core::TraceParams clamp(const TraceRequest& requested, const core::TraceParams& server_defaults,
                        const ServerLimits& limits) {
  core::TraceParams c = server_defaults;
  c.repeat.reset();
  c.mode = requested.mode.value_or(server_defaults.mode);
  if (c.mode == core::Mode::mangle && !limits.allow_mangle) c.mode = core::Mode::dup;
  c.max_ttl = count(requested.max_ttl, server_defaults.max_ttl, 1, limits.max_ttl);
  c.ttl_repeat = count(requested.ttl_repeat, server_defaults.ttl_repeat, 1, limits.max_ttl_repeat);
  c.gap_limit = count(requested.gap_limit, server_defaults.gap_limit, 1, limits.max_gap_limit);
  c.packet_freq = count(requested.packet_freq, server_defaults.packet_freq,
                        std::max<std::uint32_t>(1, limits.min_packet_freq), limits.max_packet_freq);
  c.timeout = bounded(requested.timeout.value_or(server_defaults.timeout), limits.min_timeout,
                      limits.max_timeout);
  return c;
}

TraceRequest request_of(const core::TraceParams& config) {
  TraceRequest p;
  p.mode = config.mode;
  p.packet_freq = config.packet_freq;
  p.max_ttl = config.max_ttl;
  p.ttl_repeat = config.ttl_repeat;
  p.timeout = config.timeout;
  p.gap_limit = config.gap_limit;
  return p;
}

}  // namespace nfqtrace::coop
