#include "nfqtrace/sys/clock.hpp"

#include <time.h>

namespace nfqtrace::sys {
namespace {
core::Duration read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}
}  // namespace

core::Instant now() { return core::Instant{read(CLOCK_MONOTONIC), read(CLOCK_REALTIME)}; }

core::Instant instant_from_realtime(std::int64_t realtime_ns) {
  const core::Instant t = now();
  const core::Duration wall{realtime_ns};
  core::Duration age = t.wall - wall;
  if (age < core::Duration::zero()) age = core::Duration::zero();
  return core::Instant{t.mono - age, wall};
}

}  // namespace nfqtrace::sys
