// A deadline timer (timerfd on CLOCK_MONOTONIC) to watch in an EventLoop,
// for components that need their own deadline beside the loop's.
#pragma once

#include <optional>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"

namespace nfqtrace::sys {

class Timer {
 public:
  static Result<Timer> create();
  int fd() const { return fd_.get(); }
  // Arms for a monotonic instant (a past one fires at once); nullopt disarms.
  Status set(std::optional<core::Duration> mono);
  // Consumes the expiration; false when it was re-armed since it fired.
  bool expired();

 private:
  explicit Timer(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace nfqtrace::sys
