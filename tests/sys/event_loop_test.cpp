// EventLoop: readable fds, deadlines (future, past, moved, disarmed) and
// SIGINT/SIGTERM/SIGHUP arrive as events; stray signals do not break it.
#include "nfqtrace/sys/event_loop.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "nfqtrace/sys/clock.hpp"
#include "test_support.hpp"

namespace nfqtrace::sys {
namespace {

using namespace std::chrono_literals;

struct Pipe {
  UniqueFd read_end, write_end;
  Pipe() {
    int fds[2] = {-1, -1};
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) ADD_FAILURE() << "pipe2";
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  void write_byte() const {
    if (::write(write_end.get(), "x", 1) != 1) ADD_FAILURE() << "write to the pipe";
  }
  void drain() const {
    char buffer[64];
    while (::read(read_end.get(), buffer, sizeof buffer) > 0) {
    }
  }
};

TEST(EventLoopTest, FutureDeadlineFiresOnTimeNotBefore) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  int fired = 0;
  loop->on_deadline([&] { ++fired; });
  const core::Instant start = now();
  ASSERT_TRUE(loop->set_deadline(start.mono + 50ms));
  while (fired == 0) ASSERT_TRUE(loop->run_once());
  const core::Duration waited = now().mono - start.mono;
  EXPECT_EQ(fired, 1);
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 500ms);
}

TEST(EventLoopTest, PastDeadlineFiresPromptly) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  for (const core::Duration past : {now().mono - 1s, core::Duration::zero()}) {
    int fired = 0;
    loop->on_deadline([&] { ++fired; });
    const core::Instant start = now();
    ASSERT_TRUE(loop->set_deadline(past));
    ASSERT_TRUE(loop->run_once());
    EXPECT_EQ(fired, 1);
    EXPECT_LT(now().mono - start.mono, 100ms);
  }
}

TEST(EventLoopTest, DisarmedOrMovedDeadlineDoesNotFire) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  int fired = 0;
  loop->on_deadline([&] { ++fired; });
  Pipe pipe;
  int readable = 0;
  ASSERT_TRUE(loop->watch(pipe.read_end.get(), [&] {
    ++readable;
    pipe.drain();
  }));

  ASSERT_TRUE(loop->set_deadline(now().mono + 20ms));
  ASSERT_TRUE(loop->set_deadline(std::nullopt));
  std::this_thread::sleep_for(60ms);
  pipe.write_byte();
  ASSERT_TRUE(loop->run_once());
  EXPECT_EQ(readable, 1);
  EXPECT_EQ(fired, 0) << "a disarmed deadline fired";

  // Moved later before it was due: fires once, at the new time.
  const core::Instant start = now();
  ASSERT_TRUE(loop->set_deadline(start.mono + 10ms));
  ASSERT_TRUE(loop->set_deadline(start.mono + 80ms));
  while (fired == 0) ASSERT_TRUE(loop->run_once());
  EXPECT_GE(now().mono - start.mono, 80ms);
}

TEST(EventLoopTest, WatchedFdsRunTheirHandlersAndStopEndsRun) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  Pipe first, second;
  std::vector<int> order;
  ASSERT_TRUE(loop->watch(first.read_end.get(), [&] {
    order.push_back(1);
    first.drain();
    second.write_byte();
  }));
  ASSERT_TRUE(loop->watch(second.read_end.get(), [&] {
    order.push_back(2);
    second.drain();
    loop->stop();
  }));
  first.write_byte();
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(EventLoopTest, HandlerMayUnwatchItselfAndOthersInTheSameBatch) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  Pipe a, b;
  int a_calls = 0, b_calls = 0;
  ASSERT_TRUE(loop->watch(a.read_end.get(), [&] {
    ++a_calls;
    loop->unwatch(a.read_end.get());
    loop->unwatch(b.read_end.get());
    loop->stop();
  }));
  ASSERT_TRUE(loop->watch(b.read_end.get(), [&] {
    ++b_calls;
    loop->unwatch(a.read_end.get());
    loop->unwatch(b.read_end.get());
    loop->stop();
  }));
  a.write_byte();
  b.write_byte();
  ASSERT_TRUE(loop->run());
  // Whichever ran first removed both: the other never runs, even if it was
  // already in the same epoll batch.
  EXPECT_EQ(a_calls + b_calls, 1);
}

TEST(EventLoopTest, WritableInterestCanBeTurnedOnAndOff) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  Pipe p;
  int writable = 0;
  ASSERT_TRUE(loop->watch(
      p.write_end.get(),
      [&](EventLoop::Readiness r) {
        if (r.writable) ++writable;
        (void)loop->want_writable(p.write_end.get(), false);
        loop->stop();
      },
      true));
  ASSERT_TRUE(loop->run());
  EXPECT_EQ(writable, 1);
}

TEST(EventLoopTest, TerminationSignalsArriveAsEvents) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  sigset_t blocked;
  ASSERT_EQ(sigprocmask(SIG_BLOCK, nullptr, &blocked), 0);
  for (int signo : {SIGINT, SIGTERM, SIGHUP}) EXPECT_EQ(sigismember(&blocked, signo), 1) << signo;

  std::vector<int> received;
  loop->on_signal([&](int signo) {
    received.push_back(signo);
    if (received.size() == 3) loop->stop();
  });
  // Blocked now, so these wait for the loop instead of ending the test.
  raise(SIGHUP);
  raise(SIGTERM);
  raise(SIGINT);
  ASSERT_TRUE(loop->run());
  std::sort(received.begin(), received.end());
  EXPECT_EQ(received, (std::vector<int>{SIGHUP, SIGINT, SIGTERM}));
}

TEST(EventLoopTest, SignalWithoutHandlerStopsTheLoop) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  raise(SIGTERM);
  ASSERT_TRUE(loop->run());  // returns: the signal stopped it
}

TEST(EventLoopTest, InterruptedWaitGoesOn) {
  Result<EventLoop> loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message();
  // SIGUSR1 with a handler and no SA_RESTART makes epoll_wait fail with EINTR.
  struct sigaction action {};
  action.sa_handler = [](int) {};
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGUSR1, &action, &previous), 0);

  Pipe pipe;
  bool readable = false;
  ASSERT_TRUE(loop->watch(pipe.read_end.get(), [&] {
    readable = true;
    loop->stop();
  }));
  const pthread_t loop_thread = pthread_self();
  std::thread interrupter([&] {
    std::this_thread::sleep_for(30ms);
    pthread_kill(loop_thread, SIGUSR1);
    std::this_thread::sleep_for(30ms);
    pipe.write_byte();
  });
  Status ran = loop->run();
  interrupter.join();
  sigaction(SIGUSR1, &previous, nullptr);
  ASSERT_TRUE(ran) << ran.error().message();
  EXPECT_TRUE(readable);
}

}  // namespace
}  // namespace nfqtrace::sys
