// The --pps budget, a token bucket shared by every flow: routers limit the
// ICMP they send, and probes beyond their rate would look like silence.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nfqtrace/core/time.hpp"

namespace nfqtrace::core {

class ProbeBudget {
 public:
  // `per_second` 0: no limit. Starts full (`burst` probes).
  ProbeBudget(double per_second, std::uint32_t burst);

  // Up to `wanted` probes at `now`: how many may go.
  std::size_t take(std::size_t wanted, Duration now);
  // Probes taken but not sent go back.
  void give_back(std::size_t unused);

 private:
  double per_second_;
  double burst_;
  double tokens_;
  Duration filled_at_{0};
};

// The probes' secrets: IPv4 IP IDs and the layout of a round's probes.
// xorshift32: they do not repeat within a trace and are no counter an
// off-path sender could follow.
class ProbeRandom {
 public:
  explicit ProbeRandom(std::uint32_t seed) : state_(seed ? seed : 1) {}
  std::uint32_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  std::uint16_t ip_id() { return static_cast<std::uint16_t>(next() >> 8); }
  // 0 .. n-1
  std::uint32_t below(std::uint32_t n) { return n == 0 ? 0 : next() % n; }

 private:
  std::uint32_t state_;
};

}  // namespace nfqtrace::core
