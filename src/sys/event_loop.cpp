#include "nfqtrace/sys/event_loop.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace nfqtrace::sys {
namespace {

// epoll user data: two fixed tags, then watched fds by registration index.
constexpr std::uint64_t signal_tag = 0;
constexpr std::uint64_t timer_tag = 1;
constexpr std::uint64_t first_watch_tag = 2;

constexpr int max_events_per_wait = 32;

Status add_to_epoll(int epoll_fd, int fd, std::uint64_t tag) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = tag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) return Error::from_errno("epoll_ctl add");
  return Ok{};
}

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

EventLoop::EventLoop(UniqueFd epoll, UniqueFd signal, UniqueFd timer)
    : epoll_(std::move(epoll)), signal_(std::move(signal)), timer_(std::move(timer)) {}

Result<EventLoop> EventLoop::create() {
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return Error::from_errno("epoll_create1");

  // Blocked, the signals wait for the signalfd instead of interrupting us
  // at an arbitrary point.
  const sigset_t signals = handled_signals();
  if (sigprocmask(SIG_BLOCK, &signals, nullptr) < 0) return Error::from_errno("sigprocmask");
  UniqueFd signal(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal.valid()) return Error::from_errno("signalfd");

  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer.valid()) return Error::from_errno("timerfd_create");

  if (Status s = add_to_epoll(epoll.get(), signal.get(), signal_tag); !s) return s.error();
  if (Status s = add_to_epoll(epoll.get(), timer.get(), timer_tag); !s) return s.error();
  return EventLoop(std::move(epoll), std::move(signal), std::move(timer));
}

Status EventLoop::watch(int fd, std::function<void()> on_ready) {
  const std::uint64_t tag = first_watch_tag + handlers_.size();
  if (Status s = add_to_epoll(epoll_.get(), fd, tag); !s) return s;
  handlers_.push_back(std::move(on_ready));
  return Ok{};
}

void EventLoop::on_signal(std::function<void(int signo)> handler) {
  signal_handler_ = std::move(handler);
}

void EventLoop::on_deadline(std::function<void()> handler) { deadline_handler_ = std::move(handler); }

Status EventLoop::set_deadline(std::optional<core::Duration> mono) {
  itimerspec spec{};  // all zero: disarmed
  if (mono) {
    // A zero it_value would disarm: a deadline at or before the clock's
    // origin becomes 1 ns, long past, so it fires at once.
    const core::Duration at = *mono > core::Duration::zero() ? *mono : core::Duration(1);
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(at);
    spec.it_value.tv_sec = static_cast<time_t>(seconds.count());
    spec.it_value.tv_nsec = static_cast<long>((at - seconds).count());
  }
  if (timerfd_settime(timer_.get(), mono ? TFD_TIMER_ABSTIME : 0, &spec, nullptr) < 0) {
    return Error::from_errno("timerfd_settime");
  }
  return Ok{};
}

Status EventLoop::run_once() {
  std::array<epoll_event, max_events_per_wait> events{};
  const int ready = epoll_wait(epoll_.get(), events.data(), max_events_per_wait, -1);
  if (ready < 0) {
    if (errno == EINTR) return Ok{};  // a signal we do not handle: just wait again
    return Error::from_errno("epoll_wait");
  }
  for (int i = 0; i < ready; ++i) {
    const std::uint64_t tag = events[static_cast<std::size_t>(i)].data.u64;
    if (tag == signal_tag) {
      signalfd_siginfo info{};
      while (read(signal_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        // Without a handler a stop signal still stops the loop.
        if (signal_handler_) {
          signal_handler_(static_cast<int>(info.ssi_signo));
        } else {
          stop();
        }
      }
    } else if (tag == timer_tag) {
      // Nothing to read means the deadline was moved after it fired, by a
      // handler earlier in this batch: it is no longer due.
      std::uint64_t expirations = 0;
      if (read(timer_.get(), &expirations, sizeof expirations) == static_cast<ssize_t>(sizeof expirations) &&
          expirations > 0 && deadline_handler_) {
        deadline_handler_();
      }
    } else if (tag - first_watch_tag < handlers_.size()) {
      handlers_[tag - first_watch_tag]();
    }
  }
  return Ok{};
}

Status EventLoop::run() {
  running_ = true;
  while (running_) {
    if (Status s = run_once(); !s) {
      running_ = false;
      return s;
    }
  }
  return Ok{};
}

}  // namespace nfqtrace::sys
