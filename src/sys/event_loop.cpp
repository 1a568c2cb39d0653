#include "nfqtrace/sys/event_loop.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace nfqtrace::sys {
namespace {

// epoll user data: two fixed tags, then watched fds as fd + first_watch_tag.
constexpr std::uint64_t signal_tag = 0;
constexpr std::uint64_t timer_tag = 1;
constexpr std::uint64_t first_watch_tag = 2;

constexpr int max_events_per_wait = 32;

Status epoll_set(int epoll_fd, int op, int fd, std::uint64_t tag, bool writable) {
  epoll_event event{};
  event.events = EPOLLIN | (writable ? std::uint32_t{EPOLLOUT} : 0u);
  event.data.u64 = tag;
  if (epoll_ctl(epoll_fd, op, fd, &event) < 0) return Error::from_errno("epoll_ctl");
  return Ok{};
}

Status add_to_epoll(int epoll_fd, int fd, std::uint64_t tag) {
  return epoll_set(epoll_fd, EPOLL_CTL_ADD, fd, tag, false);
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

EventLoop::EventLoop(UniqueFd epoll, UniqueFd signal, Timer timer)
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

  auto timer = Timer::create();
  if (!timer) return timer.error();

  if (Status s = add_to_epoll(epoll.get(), signal.get(), signal_tag); !s) return s.error();
  if (Status s = add_to_epoll(epoll.get(), timer->fd(), timer_tag); !s) return s.error();
  return EventLoop(std::move(epoll), std::move(signal), std::move(*timer));
}

Status EventLoop::watch(int fd, std::function<void()> on_ready) {
  return watch(fd, [f = std::move(on_ready)](Readiness) { f(); }, false);
}

Status EventLoop::watch(int fd, std::function<void(Readiness)> on_ready, bool want_writable) {
  if (fd < 0) return Error{"watch: invalid fd", EBADF};
  const std::uint64_t tag = first_watch_tag + static_cast<std::uint64_t>(fd);
  if (Status s = epoll_set(epoll_.get(), EPOLL_CTL_ADD, fd, tag, want_writable); !s) return s;
  handlers_[fd] = std::make_shared<Handler>(std::move(on_ready));
  return Ok{};
}

Status EventLoop::want_writable(int fd, bool want) {
  const std::uint64_t tag = first_watch_tag + static_cast<std::uint64_t>(fd);
  return epoll_set(epoll_.get(), EPOLL_CTL_MOD, fd, tag, want);
}

void EventLoop::unwatch(int fd) {
  if (handlers_.erase(fd) > 0) (void)epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::on_signal(std::function<void(int signo)> handler) {
  signal_handler_ = std::move(handler);
}

void EventLoop::on_deadline(std::function<void()> handler) { deadline_handler_ = std::move(handler); }

Status EventLoop::set_deadline(std::optional<core::Duration> mono) { return timer_.set(mono); }

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
      if (timer_.expired() && deadline_handler_) deadline_handler_();
    } else {
      // A handler earlier in this batch may have unwatched this fd.
      auto it = handlers_.find(static_cast<int>(tag - first_watch_tag));
      if (it == handlers_.end()) continue;
      const std::shared_ptr<Handler> handler = it->second;
      const std::uint32_t e = events[static_cast<std::size_t>(i)].events;
      (*handler)(Readiness{(e & EPOLLIN) != 0, (e & EPOLLOUT) != 0,
                           (e & (EPOLLERR | EPOLLHUP)) != 0});
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
