// Time as the engine sees it: it never reads a clock, it is told the time.
#pragma once

#include <chrono>
#include <cstdint>

namespace nfqtrace::core {

using Duration = std::chrono::nanoseconds;

struct Instant {
  Duration mono{0};  // monotonic: for RTTs, timeouts and deadlines
  Duration wall{0};  // since the Unix epoch: for the timestamps users read
};

}  // namespace nfqtrace::core
