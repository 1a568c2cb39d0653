#include "nfqtrace/sys/timer.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdint>

namespace nfqtrace::sys {

Result<Timer> Timer::create() {
  UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) return Error::from_errno("timerfd_create");
  return Timer(std::move(fd));
}

Status Timer::set(std::optional<core::Duration> mono) {
  itimerspec spec{};  // all zero: disarmed
  if (mono) {
    // it_value zero would disarm: a deadline at the clock's origin is 1 ns.
    const core::Duration at = *mono > core::Duration::zero() ? *mono : core::Duration(1);
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(at);
    spec.it_value.tv_sec = static_cast<time_t>(seconds.count());
    spec.it_value.tv_nsec = static_cast<long>((at - seconds).count());
  }
  if (timerfd_settime(fd_.get(), mono ? TFD_TIMER_ABSTIME : 0, &spec, nullptr) < 0)
    return Error::from_errno("timerfd_settime");
  return Ok{};
}

bool Timer::expired() {
  std::uint64_t expirations = 0;
  return read(fd_.get(), &expirations, sizeof expirations) ==
             static_cast<ssize_t>(sizeof expirations) &&
         expirations > 0;
}

}  // namespace nfqtrace::sys
