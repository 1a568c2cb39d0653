// loadgen: the traffic of the soak test (tests/soak/soak.sh). Built by CMake
// (tests/soak/CMakeLists.txt) into <build>/helpers.
//
//   loadgen server PORT
//     Listens on [::]:PORT (IPv4 and IPv6), accepts any number of
//     connections, reads and discards what they send, closes when they do.
//
//   loadgen client N MIN_S MAX_S INTERVAL_MS STATS_S DST[,DST...] PORT
//     Keeps N connections open at any time, spread over the destinations in
//     turn. Each lives a random MIN_S..MAX_S seconds, sends a small message
//     (20..120 bytes) every INTERVAL_MS (+-20 %) and then closes (FIN); a new
//     one replaces it at once, so connections open and close continuously.
//     Every STATS_S seconds, and at SIGTERM/SIGINT, prints one line:
//       stats t=S open=N opened=N closed=N connect_failed=N aborted=N msgs=N bytes=N
//     opened: connect() started; closed: ended by us after their lifetime;
//     connect_failed: refused / unreachable; aborted: reset or closed by the
//     server, a send error, or not connected by the end of their lifetime.
//
// One thread, poll(); no allocation per message. SIGTERM/SIGINT end it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }

double now_s() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

void nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int server(std::uint16_t port) {
  const int lfd = socket(AF_INET6, SOCK_STREAM, 0);
  if (lfd < 0) { std::perror("loadgen: socket"); return 1; }
  int one = 1, zero = 0;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_any;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || listen(lfd, 1024) < 0) {
    std::perror("loadgen: bind/listen");
    return 1;
  }
  nonblock(lfd);
  std::vector<pollfd> fds{{lfd, POLLIN, 0}};
  unsigned long long accepted = 0, bytes = 0;
  char buf[65536];
  while (!stop) {
    if (poll(fds.data(), fds.size(), 500) < 0) {
      if (errno == EINTR) continue;
      std::perror("loadgen: poll");
      return 1;
    }
    for (std::size_t i = fds.size(); i-- > 1;) {
      if (!fds[i].revents) continue;
      bool done = false;
      for (;;) {
        const ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n > 0) { bytes += static_cast<unsigned long long>(n); continue; }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        done = true;  // EOF or error
        break;
      }
      if (done) {
        close(fds[i].fd);
        fds[i] = fds.back();
        fds.pop_back();
      }
    }
    if (fds[0].revents & POLLIN) {
      for (;;) {
        const int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
        if (c < 0) break;
        ++accepted;
        fds.push_back({c, POLLIN, 0});
      }
    }
  }
  std::printf("server accepted=%llu open=%zu bytes=%llu\n", accepted, fds.size() - 1, bytes);
  return 0;
}

struct Conn {
  int fd = -1;
  bool connected = false;
  double deadline = 0, next_send = 0;
  unsigned long long id = 0, seq = 0;
};

int client(std::size_t n, double min_s, double max_s, double interval_ms, double stats_s,
           const std::vector<sockaddr_storage>& dsts) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(now_s() * 1e6) ^ static_cast<std::uint64_t>(getpid()));
  std::uniform_real_distribution<double> life(min_s, max_s), jitter(0.8, 1.2), unit(0, 1);
  std::uniform_int_distribution<int> len(20, 120);
  std::vector<Conn> conns(n);
  unsigned long long opened = 0, closed = 0, failed = 0, aborted = 0, msgs = 0, bytes = 0, next_id = 0;
  std::size_t turn = 0;
  const double t0 = now_s();
  double next_stats = t0 + stats_s;
  char msg[160];

  auto open_one = [&](Conn& c, double now) {
    const sockaddr_storage& d = dsts[turn++ % dsts.size()];
    c = Conn{};
    c.fd = socket(d.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c.fd < 0) { ++failed; return; }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const socklen_t l = d.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&d), l) < 0 && errno != EINPROGRESS) {
      ++failed;
      close(c.fd);
      c.fd = -1;
      return;
    }
    ++opened;
    c.id = next_id++;
    c.deadline = now + life(rng);
    c.next_send = now + unit(rng) * interval_ms / 1000;  // spread the first messages
  };
  auto close_one = [&](Conn& c, bool abort) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    if (abort) ++aborted; else ++closed;
  };
  auto stats = [&](double now) {
    int open = 0;
    for (const Conn& c : conns) open += c.fd >= 0;
    std::printf("stats t=%.0f open=%d opened=%llu closed=%llu connect_failed=%llu aborted=%llu msgs=%llu bytes=%llu\n",
                now - t0, open, opened, closed, failed, aborted, msgs, bytes);
    std::fflush(stdout);
  };

  const double start = now_s();
  for (Conn& c : conns) open_one(c, start);
  std::vector<pollfd> pfds(n);
  while (!stop) {
    double now = now_s();
    double wake = now + 0.05;
    for (std::size_t i = 0; i < n; ++i) {
      Conn& c = conns[i];
      pfds[i] = {c.fd, static_cast<short>(c.fd < 0 ? 0 : c.connected ? POLLIN : POLLOUT), 0};
      if (c.fd < 0) continue;
      if (c.deadline < wake) wake = c.deadline;
      if (c.connected && c.next_send < wake) wake = c.next_send;
    }
    const int timeout = std::max(0, static_cast<int>((wake - now) * 1000));
    if (poll(pfds.data(), n, timeout) < 0 && errno != EINTR) { std::perror("loadgen: poll"); return 1; }
    now = now_s();
    for (std::size_t i = 0; i < n; ++i) {
      Conn& c = conns[i];
      if (c.fd < 0) { open_one(c, now); continue; }
      const short ev = pfds[i].revents;
      if (!c.connected && ev) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) { ++failed; close(c.fd); c.fd = -1; open_one(c, now); continue; }
        c.connected = true;
      } else if (c.connected && ev) {
        // The server never writes: readable means EOF or reset.
        char b[256];
        if (read(c.fd, b, sizeof b) <= 0) { close_one(c, true); open_one(c, now); continue; }
      }
      if (now >= c.deadline) {
        close_one(c, !c.connected);
        open_one(c, now);
        continue;
      }
      if (c.connected && now >= c.next_send) {
        const int l = len(rng);
        int w = std::snprintf(msg, sizeof msg, "conn %llu msg %llu ", c.id, c.seq++);
        while (w < l - 1) msg[w++] = 'x';
        msg[w++] = '\n';
        const ssize_t s = send(c.fd, msg, static_cast<std::size_t>(w), MSG_NOSIGNAL);
        if (s < 0 && errno != EAGAIN) { close_one(c, true); open_one(c, now); continue; }
        if (s > 0) { ++msgs; bytes += static_cast<unsigned long long>(s); }
        c.next_send += interval_ms / 1000 * jitter(rng);
        if (c.next_send < now) c.next_send = now;  // fell behind: do not burst
      }
    }
    if (now >= next_stats) {
      stats(now);
      next_stats += stats_s;
    }
  }
  stats(now_s());
  for (Conn& c : conns)
    if (c.fd >= 0) close(c.fd);
  return 0;
}

bool parse_addr(const std::string& s, std::uint16_t port, sockaddr_storage& out) {
  out = {};
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, s.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    return true;
  }
  return false;
}

// A whole number in [MIN, MAX], or -1 when TEXT is not one.
long whole(const char* text, long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  return errno != 0 || end == text || *end != '\0' || v < min || v > max ? -1 : v;
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "server" && argc == 3) {
    const long port = whole(argv[2], 1, 65535);
    if (port > 0) return server(static_cast<std::uint16_t>(port));
  }
  if (mode == "client" && argc == 9) {
    const long n = whole(argv[2], 1, 1'000'000), port = whole(argv[8], 1, 65535);
    if (n < 0 || port < 0) {
      std::fprintf(stderr, "loadgen: N must be 1..1000000, PORT 1..65535\n");
      return 2;
    }
    std::vector<sockaddr_storage> dsts;
    std::string list = argv[7];
    for (std::size_t at = 0; at <= list.size();) {
      std::size_t comma = list.find(',', at);
      if (comma == std::string::npos) comma = list.size();
      sockaddr_storage d;
      if (!parse_addr(list.substr(at, comma - at), static_cast<std::uint16_t>(port), d)) {
        std::fprintf(stderr, "loadgen: bad address '%s'\n", list.substr(at, comma - at).c_str());
        return 2;
      }
      dsts.push_back(d);
      at = comma + 1;
    }
    return client(static_cast<std::size_t>(n), std::atof(argv[3]), std::atof(argv[4]), std::atof(argv[5]),
                  std::atof(argv[6]), dsts);
  }
  std::fprintf(stderr,
               "usage: loadgen server PORT\n"
               "       loadgen client N MIN_S MAX_S INTERVAL_MS STATS_S DST[,DST...] PORT\n");
  return 2;
}
