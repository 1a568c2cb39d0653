// common.hpp — what the bench tools (pingpong.cpp, manyconn.cpp) share:
// errors, argument parsing, TCP_NODELAY, the dual-stack listening socket.
// Header only: each tool is built from its one .cpp (bench/tools/CMakeLists.txt).
//
// A tool defines, at namespace scope:
//   const char* const bench::tool_name = "NAME";         // prefix of its messages
//   const char* const bench::usage_text = "usage: ...";  // usage() prints it
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

extern const char* const tool_name;
extern const char* const usage_text;

// usage: the tool's usage text on stderr, exit 2.
[[noreturn]] inline void usage() {
  std::fputs(usage_text, stderr);
  std::exit(2);
}

// fail WHAT: "NAME: WHAT: strerror(errno)" on stderr, exit 1.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "%s: %s: %s\n", tool_name, what, std::strerror(errno));
  std::exit(1);
}

// number TEXT MIN MAX: a decimal integer in [MIN, MAX], else usage().
inline long number(const char* text, long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > max) usage();
  return v;
}

inline void nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// listen_any PORT_TEXT BACKLOG [SOCKET_FLAGS]: a TCP socket listening on
// PORT on every IPv4 and IPv6 address (one AF_INET6 socket, V6ONLY off),
// SO_REUSEADDR; prints "listening" on stdout once it does (the scripts wait
// for the port). Exits through fail() or usage() when it cannot.
inline int listen_any(const char* port_text, int backlog, int socket_flags = 0) {
  const auto port = static_cast<std::uint16_t>(number(port_text, 1, 65535));
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | socket_flags, 0);
  if (fd < 0) fail("socket");
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_any;
  addr.sin6_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
  if (::listen(fd, backlog) != 0) fail("listen");
  std::puts("listening");
  std::fflush(stdout);
  return fd;
}

}  // namespace bench
