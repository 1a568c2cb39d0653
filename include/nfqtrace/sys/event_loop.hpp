// A single-threaded epoll loop with SIGINT/SIGTERM/SIGHUP as events (signalfd) and
// one deadline timer (timerfd, CLOCK_MONOTONIC).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"

namespace nfqtrace::sys {

class EventLoop {
 public:
  // Blocks SIGINT, SIGTERM and SIGHUP for the process and receives them as events.
  static Result<EventLoop> create();

  // `on_ready` runs when fd is readable.
  Status watch(int fd, std::function<void()> on_ready);
  void on_signal(std::function<void(int signo)> handler);
  void on_deadline(std::function<void()> handler);
  // Arms the timer for a monotonic instant; nullopt disarms it.
  Status set_deadline(std::optional<core::Duration> mono);

  // Waits for and dispatches one batch of events.
  Status run_once();
  // Runs until stop() is called.
  Status run();
  void stop() { running_ = false; }

 private:
  EventLoop(UniqueFd epoll, UniqueFd signal, UniqueFd timer);
  UniqueFd epoll_, signal_, timer_;
  // Indexed by registration. A deque (changed from vector): watch() called
  // from inside a handler must not move the handler that is running.
  std::deque<std::function<void()>> handlers_;
  std::function<void(int)> signal_handler_;
  std::function<void()> deadline_handler_;
  bool running_ = false;
};

}  // namespace nfqtrace::sys
