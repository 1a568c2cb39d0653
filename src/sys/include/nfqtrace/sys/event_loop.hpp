// A single-threaded epoll loop with SIGINT/SIGTERM/SIGHUP as events (signalfd) and
// one deadline timer (timerfd, CLOCK_MONOTONIC).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"
#include "nfqtrace/sys/timer.hpp"

namespace nfqtrace::sys {

class EventLoop {
 public:
  // Blocks SIGINT, SIGTERM and SIGHUP for the process and receives them as events.
  static Result<EventLoop> create();

  struct Readiness {
    bool readable = false;
    bool writable = false;
    bool hangup = false;  // error or hang-up: the next read/write tells which
  };

  // `on_ready` runs when fd is readable.
  Status watch(int fd, std::function<void()> on_ready);
  // `on_ready` runs when fd is readable, or writable while that is wanted.
  Status watch(int fd, std::function<void(Readiness)> on_ready, bool want_writable);
  Status want_writable(int fd, bool want);
  // Forgets fd (call before closing it); safe from inside its own handler.
  void unwatch(int fd);
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
  EventLoop(UniqueFd epoll, UniqueFd signal, Timer timer);
  UniqueFd epoll_, signal_;
  Timer timer_;
  // By fd. Shared so a handler that unwatches itself keeps running safely.
  using Handler = std::function<void(Readiness)>;
  std::unordered_map<int, std::shared_ptr<Handler>> handlers_;
  std::function<void(int)> signal_handler_;
  std::function<void()> deadline_handler_;
  bool running_ = false;
};

}  // namespace nfqtrace::sys
