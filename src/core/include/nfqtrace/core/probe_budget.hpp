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

// IP IDs for IPv4 probes: xorshift32, so they do not repeat within a trace
// and are no counter an off-path sender could follow.
class IpIdSequence {
 public:
  explicit IpIdSequence(std::uint32_t seed) : state_(seed ? seed : 1) {}
  std::uint16_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return static_cast<std::uint16_t>(state_ >> 8);
  }

 private:
  std::uint32_t state_;
};

}  // namespace nfqtrace::core
