// manyconn — many slow TCP connections from one process (epoll), for
// nfqtrace's scale and cost benchmarks (bench/). Built by CMake
// (bench/tools/CMakeLists.txt) into <build>/helpers.
//
//   manyconn server PORT
//       Echo server (IPv4 and IPv6), one thread, epoll. Prints "listening".
//   manyconn client HOST PORT N INTERVAL_MS HOLD_S [RATE=1000] [SIZE=32]
//       Opens N connections to HOST:PORT, at most RATE new ones a second.
//       Each open connection writes SIZE bytes every INTERVAL_MS (first write
//       at a random phase within the interval) and reads the echo. When all
//       N are open (or have failed) it prints "connected K failed F" and keeps
//       them going for HOLD_S more seconds (or until SIGTERM or SIGINT),
//       then closes them all and prints
//       "connected=K failed=F lost=L msgs=M echoes=E echo_p50_us=.. echo_p99_us=..
//       echo_max_us=.. open_s=..". (Writes made while an earlier one is still
//       unanswered share its echo sample: E < M when echoes are slow.)
//       The echo time is from a write to the arrival of its last echoed byte.
//       On stderr, a timeline: per second of the run, the writes whose echo
//       took over 10 ms and the slowest echo.
//
// Exit status: 0 when every connection opened and stayed up, 1 otherwise,
// 2 on bad arguments.

#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"

const char* const bench::tool_name = "manyconn";

const char* const bench::usage_text =
    "usage: manyconn server PORT\n"
    "       manyconn client HOST PORT N INTERVAL_MS HOLD_S [RATE] [SIZE]\n";

namespace {

using namespace bench;  // fail, number, usage, nodelay, listen_any
using Clock = std::chrono::steady_clock;
using Ns = std::int64_t;

volatile sig_atomic_t stop_requested = 0;
void request_stop(int) { stop_requested = 1; }

Ns now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// As many descriptors as the kernel allows (root may raise the hard limit).
void raise_nofile() {
  rlimit lim{};
  for (rlim_t want : {rlim_t{1} << 20, rlim_t{262144}, rlim_t{65536}}) {
    lim.rlim_cur = lim.rlim_max = want;
    if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) return;
  }
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// ---------------------------------------------------------------- server

int serve(const char* port_text) {
  raise_nofile();
  const int lfd = listen_any(port_text, 65535, SOCK_NONBLOCK);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) fail("epoll_ctl");

  std::unordered_map<int, std::string> pending;  // echo bytes not yet written
  std::vector<epoll_event> events(1024);
  std::vector<char> buf(65536);
  const auto close_conn = [&](int fd) {
    pending.erase(fd);
    ::close(fd);
  };
  const auto flush = [&](int fd, std::string& out) {
    while (!out.empty()) {
      const ssize_t w = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      out.erase(0, static_cast<std::size_t>(w));
    }
    return true;
  };
  for (;;) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      const std::uint32_t what = events[static_cast<std::size_t>(i)].events;
      if (fd == lfd) {
        for (;;) {
          const int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          nodelay(c);
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLRDHUP;
          cev.data.fd = c;
          if (::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) ::close(c);
        }
        continue;
      }
      bool alive = true;
      if (what & EPOLLIN) {
        for (;;) {
          const ssize_t r = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (r > 0) {
            std::string& out = pending[fd];
            out.append(buf.data(), static_cast<std::size_t>(r));
            if (!flush(fd, out)) { alive = false; break; }
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) alive = false;
          break;
        }
      }
      if (alive && (what & EPOLLOUT)) alive = flush(fd, pending[fd]);
      if (alive && (what & (EPOLLHUP | EPOLLERR))) alive = false;
      if (!alive) {
        close_conn(fd);
        continue;
      }
      // Ask for EPOLLOUT only while echo bytes wait.
      auto it = pending.find(fd);
      const bool waiting = it != pending.end() && !it->second.empty();
      epoll_event cev{};
      cev.events = EPOLLIN | EPOLLRDHUP | (waiting ? EPOLLOUT : 0u);
      cev.data.fd = fd;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
      if (!waiting && it != pending.end()) pending.erase(it);
    }
  }
}

// ---------------------------------------------------------------- client

enum class State { idle, connecting, open, failed, closed };

struct Conn {
  int fd = -1;
  State state = State::idle;
  Ns sent_at = 0;         // first unanswered write
  std::size_t owed = 0;   // echo bytes still expected
};

double percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int client(const char* host, const char* port, long n, long interval_ms, long hold_s, long rate, long size) {
  raise_nofile();
  struct sigaction sa{};
  sa.sa_handler = request_stop;  // no SA_RESTART: epoll_wait returns at once
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(host, port, &hints, &list); rc != 0) {
    std::fprintf(stderr, "manyconn: %s: %s\n", host, ::gai_strerror(rc));
    return 1;
  }
  sockaddr_storage dst{};
  std::memcpy(&dst, list->ai_addr, list->ai_addrlen);
  const socklen_t dst_len = list->ai_addrlen;
  const int family = list->ai_family;
  ::freeaddrinfo(list);

  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");
  std::vector<Conn> conns(static_cast<std::size_t>(n));
  using Due = std::pair<Ns, std::size_t>;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due;
  std::mt19937_64 rng(12345);
  const Ns interval = interval_ms * 1'000'000;
  std::uniform_int_distribution<Ns> phase(0, interval - 1);
  const std::string msg(static_cast<std::size_t>(size), 'm');
  std::vector<char> buf(65536);
  std::vector<float> echo_us;
  // Per second of the run (by write time): echoes slower than 10 ms, slowest.
  std::vector<std::pair<long, float>> slow_by_second;
  std::vector<epoll_event> events(1024);

  long started = 0, open = 0, failed = 0, lost = 0, msgs = 0;
  const Ns t0 = now_ns();
  Ns all_open_at = 0;
  // Connections that neither open nor fail in this time count as failed.
  const Ns open_deadline = t0 + (n * 1'000'000'000LL) / rate + 20'000'000'000LL;

  const auto fail_conn = [&](Conn& c, bool was_open) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.state = State::failed;
    if (was_open) { ++lost; --open; } else { ++failed; }
  };

  for (;;) {
    const Ns now = now_ns();
    // Open new connections, paced.
    const long allowed = std::min<long>(n, static_cast<long>((now - t0) * rate / 1'000'000'000LL) + 1);
    while (started < allowed) {
      Conn& c = conns[static_cast<std::size_t>(started)];
      ++started;
      c.fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) {
        c.state = State::failed;
        ++failed;
        continue;
      }
      nodelay(c.fd);
      c.state = State::connecting;
      if (::connect(c.fd, reinterpret_cast<sockaddr*>(&dst), dst_len) != 0 && errno != EINPROGRESS) {
        fail_conn(c, false);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = static_cast<std::uint64_t>(started - 1);
      ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    }
    if (all_open_at == 0 && started == n && open + failed + lost == n) {
      all_open_at = now;
      std::printf("connected %ld failed %ld\n", open, failed);
      std::fflush(stdout);
    }
    if (all_open_at == 0 && now > open_deadline) {
      for (Conn& c : conns)
        if (c.state == State::connecting) fail_conn(c, false);
      continue;
    }
    if (all_open_at != 0 && now >= all_open_at + hold_s * 1'000'000'000LL) break;
    if (stop_requested) {
      if (all_open_at == 0) all_open_at = now;
      break;
    }

    // Writes that are due.
    while (!due.empty() && due.top().first <= now) {
      const auto [when, idx] = due.top();
      due.pop();
      Conn& c = conns[idx];
      if (c.state != State::open) continue;
      const ssize_t w = ::send(c.fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        fail_conn(c, true);
        continue;
      }
      if (w > 0) {
        ++msgs;
        if (c.owed == 0) c.sent_at = now;
        c.owed += static_cast<std::size_t>(w);
      }
      due.emplace(when + interval, idx);
    }

    Ns wait_ns = 5'000'000;
    if (started < n) wait_ns = 1'000'000;
    if (!due.empty()) wait_ns = std::min(wait_ns, std::max<Ns>(due.top().first - now, 0));
    const int timeout_ms = static_cast<int>((wait_ns + 999'999) / 1'000'000);
    const int got = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    const Ns at = now_ns();
    for (int i = 0; i < got; ++i) {
      const epoll_event& ev = events[static_cast<std::size_t>(i)];
      const auto idx = static_cast<std::size_t>(ev.data.u64);
      Conn& c = conns[idx];
      if (c.state == State::connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (ev.events & (EPOLLERR | EPOLLHUP))) {
          fail_conn(c, false);
          continue;
        }
        if (!(ev.events & EPOLLOUT)) continue;
        c.state = State::open;
        ++open;
        epoll_event mod{};
        mod.events = EPOLLIN | EPOLLRDHUP;
        mod.data.u64 = idx;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &mod);
        due.emplace(at + phase(rng), idx);
        continue;
      }
      if (c.state != State::open) continue;
      if (ev.events & EPOLLIN) {
        for (;;) {
          const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
          if (r > 0) {
            const auto got_bytes = static_cast<std::size_t>(r);
            if (c.owed > 0) {
              c.owed -= std::min(c.owed, got_bytes);
              if (c.owed == 0) {
                const float us = static_cast<float>(at - c.sent_at) / 1000.0f;
                echo_us.push_back(us);
                const auto sec = static_cast<std::size_t>((c.sent_at - t0) / 1'000'000'000LL);
                if (sec >= slow_by_second.size()) slow_by_second.resize(sec + 1, {0, 0.0f});
                if (us > 10'000.0f) ++slow_by_second[sec].first;
                slow_by_second[sec].second = std::max(slow_by_second[sec].second, us);
              }
            }
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            fail_conn(c, true);
          }
          break;
        }
      }
      if (c.state == State::open && (ev.events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))) fail_conn(c, true);
    }
  }
  const long still_open = open;
  for (Conn& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
  }
  const double open_s = static_cast<double>(all_open_at - t0) / 1e9;
  const double p50 = percentile(echo_us, 0.50);
  const double p99 = percentile(echo_us, 0.99);
  const double pmax = percentile(echo_us, 1.0);
  std::fputs("echo timeline (second: writes echoed after > 10 ms, slowest echo ms):", stderr);
  for (std::size_t i = 0; i < slow_by_second.size(); ++i) {
    std::fprintf(stderr, " %zu:%ld,%.1f", i, slow_by_second[i].first, slow_by_second[i].second / 1000.0);
  }
  std::fputs("\n", stderr);
  std::printf(
      "connected=%ld failed=%ld lost=%ld msgs=%ld echoes=%zu echo_p50_us=%.1f echo_p99_us=%.1f echo_max_us=%.1f "
      "open_s=%.3f\n",
      still_open + lost, failed, lost, msgs, echo_us.size(), p50, p99, pmax, open_s);
  return (failed == 0 && lost == 0) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string mode = argv[1];
  if (mode == "server" && argc == 3) return serve(argv[2]);
  if (mode == "client" && argc >= 7 && argc <= 9) {
    return client(argv[2], argv[3], number(argv[4], 1, 1'000'000), number(argv[5], 1, 600'000),
                  number(argv[6], 0, 86'400), argc > 7 ? number(argv[7], 1, 1'000'000) : 1000,
                  argc > 8 ? number(argv[8], 1, 65536) : 32);
  }
  usage();
}
