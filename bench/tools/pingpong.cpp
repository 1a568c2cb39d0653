// pingpong — a TCP request/response latency probe and a paced one-way sender,
// for nfqtrace's benchmarks (bench/). Built by CMake (bench/tools/CMakeLists.txt)
// into <build>/helpers.
//
//   pingpong server PORT
//       Listens on PORT (IPv4 and IPv6), echoes every byte of every
//       connection back (a thread per connection, TCP_NODELAY). Prints
//       "listening" once ready.
//   pingpong ping HOST PORT N [SIZE=64] [WARMUP=200]
//       One connection: WARMUP untimed round trips, then N timed ones, each a
//       SIZE-byte write and the wait for its SIZE-byte echo. Prints
//       "n=N p50_us=.. p90_us=.. p99_us=.. p999_us=.. mean_us=.. min_us=.. max_us=.."
//   pingpong pace HOST PORT INTERVAL_MS SIZE DURATION_S
//       One connection that writes SIZE bytes every INTERVAL_MS for
//       DURATION_S (and reads and discards the echo), then closes. Prints the
//       wall-clock (CLOCK_REALTIME, ns since the epoch) of connect() returning
//       and of the first write: "connected_ns=.. first_write_ns=.. writes=K".
//
// Exit status 0 on success, 1 on a network error, 2 on bad arguments.

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common.hpp"

const char* const bench::tool_name = "pingpong";

const char* const bench::usage_text =
    "usage: pingpong server PORT\n"
    "       pingpong ping HOST PORT N [SIZE] [WARMUP]\n"
    "       pingpong pace HOST PORT INTERVAL_MS SIZE DURATION_S\n";

namespace {

using namespace bench;  // fail, number, usage, nodelay, listen_any
using Clock = std::chrono::steady_clock;

int connect_to(const char* host, const char* port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(host, port, &hints, &list); rc != 0) {
    std::fprintf(stderr, "pingpong: %s: %s\n", host, ::gai_strerror(rc));
    std::exit(1);
  }
  int fd = -1;
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(list);
  if (fd < 0) fail("connect");
  nodelay(fd);
  return fd;
}

bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_exactly(int fd, char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, data, n, 0);
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// ---------------------------------------------------------------- server

void echo(int fd) {
  nodelay(fd);
  std::vector<char> buf(65536);
  for (;;) {
    const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (!write_all(fd, buf.data(), static_cast<std::size_t>(r))) break;
  }
  ::close(fd);
}

int serve(const char* port_text) {
  const int fd = listen_any(port_text, 1024);
  for (;;) {
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      fail("accept");
    }
    std::thread(echo, c).detach();
  }
}

// ---------------------------------------------------------------- ping

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(rank);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

int ping(const char* host, const char* port, long n, long size, long warmup) {
  const int fd = connect_to(host, port);
  std::vector<char> out(static_cast<std::size_t>(size), 'p'), in(static_cast<std::size_t>(size));
  std::vector<double> rtt_us;
  rtt_us.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < warmup + n; ++i) {
    const auto t0 = Clock::now();
    if (!write_all(fd, out.data(), out.size())) fail("send");
    if (!read_exactly(fd, in.data(), in.size())) fail("recv (echo)");
    const auto t1 = Clock::now();
    if (i >= warmup) rtt_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  ::close(fd);
  std::sort(rtt_us.begin(), rtt_us.end());
  double sum = 0;
  for (double v : rtt_us) sum += v;
  std::printf("n=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f mean_us=%.1f min_us=%.1f max_us=%.1f\n",
              n, percentile(rtt_us, 0.50), percentile(rtt_us, 0.90), percentile(rtt_us, 0.99),
              percentile(rtt_us, 0.999), sum / static_cast<double>(rtt_us.size()), rtt_us.front(),
              rtt_us.back());
  return 0;
}

// ---------------------------------------------------------------- pace

int pace(const char* host, const char* port, long interval_ms, long size, long duration_s) {
  const int fd = connect_to(host, port);
  const std::int64_t connected_ns = realtime_ns();
  std::int64_t first_write_ns = 0;
  std::vector<char> out(static_cast<std::size_t>(size), 'x'), in(65536);
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(duration_s);
  auto next = start;
  long writes = 0;
  for (;;) {
    const auto now = Clock::now();
    if (now >= end) break;
    if (now >= next) {
      if (writes == 0) first_write_ns = realtime_ns();
      if (!write_all(fd, out.data(), out.size())) fail("send");
      ++writes;
      next += std::chrono::milliseconds(interval_ms);
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait, 0)));
    if (rc > 0 && (p.revents & POLLIN)) {
      const ssize_t r = ::recv(fd, in.data(), in.size(), MSG_DONTWAIT);
      if (r == 0) {
        std::fputs("pingpong: server closed the connection\n", stderr);
        return 1;
      }
    }
  }
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
  std::printf("connected_ns=%lld first_write_ns=%lld writes=%ld\n", static_cast<long long>(connected_ns),
              static_cast<long long>(first_write_ns), writes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage();
  const std::string mode = argv[1];
  if (mode == "server" && argc == 3) return serve(argv[2]);
  if (mode == "ping" && argc >= 5 && argc <= 7) {
    return ping(argv[2], argv[3], number(argv[4], 1, 100'000'000), argc > 5 ? number(argv[5], 1, 65536) : 64,
                argc > 6 ? number(argv[6], 0, 1'000'000) : 200);
  }
  if (mode == "pace" && argc == 7) {
    return pace(argv[2], argv[3], number(argv[4], 1, 60'000), number(argv[5], 1, 65536),
                number(argv[6], 1, 86'400));
  }
  usage();
}
