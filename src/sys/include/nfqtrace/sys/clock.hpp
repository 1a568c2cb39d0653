// The one place that reads clocks.
#pragma once

#include "nfqtrace/core/time.hpp"

namespace nfqtrace::sys {

// Monotonic and wall-clock time, read together.
core::Instant now();

// The instant a packet arrived, from its kernel receive timestamp
// (CLOCK_REALTIME nanoseconds, as SO_TIMESTAMPNS gives it), mapped onto the
// monotonic clock so RTTs survive wall-clock steps between arrival and read.
core::Instant instant_from_realtime(std::int64_t realtime_ns);

}  // namespace nfqtrace::sys
