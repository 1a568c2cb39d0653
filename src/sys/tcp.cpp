#include "nfqtrace/sys/tcp.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace nfqtrace::sys {
namespace {

socklen_t to_sockaddr(const wire::Address& a, std::uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (a.family == wire::Family::v4) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, a.bytes.data(), 4);
    std::memcpy(&out, &sin, sizeof sin);
    return sizeof sin;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  std::memcpy(&sin6.sin6_addr, a.bytes.data(), 16);
  std::memcpy(&out, &sin6, sizeof sin6);
  return sizeof sin6;
}

// An address and port from a socket address; IPv4-mapped IPv6 becomes IPv4.
std::optional<std::pair<wire::Address, std::uint16_t>> from_sockaddr(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET) {
    sockaddr_in sin{};
    std::memcpy(&sin, &s, sizeof sin);
    return std::pair{wire::Address::v4(wire::Bytes(reinterpret_cast<const std::uint8_t*>(&sin.sin_addr), 4)),
                     ntohs(sin.sin_port)};
  }
  if (s.ss_family == AF_INET6) {
    sockaddr_in6 sin6{};
    std::memcpy(&sin6, &s, sizeof sin6);
    const auto* b = reinterpret_cast<const std::uint8_t*>(&sin6.sin6_addr);
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b, mapped, 12) == 0) return std::pair{wire::Address::v4(wire::Bytes(b + 12, 4)), ntohs(sin6.sin6_port)};
    return std::pair{wire::Address::v6(wire::Bytes(b, 16)), ntohs(sin6.sin6_port)};
  }
  return std::nullopt;
}

Status set_nodelay(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
    return Error::from_errno("set TCP_NODELAY");
  return Ok{};
}

}  // namespace

Result<UniqueFd> tcp_listen(wire::Family family, std::uint16_t port, int backlog) {
  const bool v4 = family == wire::Family::v4;
  UniqueFd fd(socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error::from_errno(v4 ? "open IPv4 listening socket" : "open IPv6 listening socket");
  const int one = 1;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!v4 && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
    return Error::from_errno("set IPV6_V6ONLY");
  wire::Address any;
  any.family = family;
  sockaddr_storage sa{};
  const socklen_t len = to_sockaddr(any, port, sa);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) < 0)
    return Error::from_errno("listen on port " + std::to_string(port) + (v4 ? " (IPv4)" : " (IPv6)"));
  if (listen(fd.get(), backlog) < 0) return Error::from_errno("listen");
  return fd;
}

Result<UniqueFd> tcp_accept(int listen_fd) {
  for (;;) {
    UniqueFd fd(accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.valid()) {
      if (auto s = set_nodelay(fd.get()); !s) return s.error();
      return fd;
    }
    if (errno == EINTR) continue;
    // A connection that died in the backlog, or nothing there: try later.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EPROTO)
      return UniqueFd();
    return Error::from_errno("accept");
  }
}

Result<UniqueFd> tcp_connect(const wire::Address& address, std::uint16_t port) {
  const bool v4 = address.family == wire::Family::v4;
  UniqueFd fd(socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error::from_errno("open TCP socket");
  if (auto s = set_nodelay(fd.get()); !s) return s.error();
  sockaddr_storage sa{};
  const socklen_t len = to_sockaddr(address, port, sa);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) < 0 && errno != EINPROGRESS)
    return Error::from_errno("connect to " + address.to_string());
  return fd;
}

Status connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return Error::from_errno("getsockopt SO_ERROR");
  if (err != 0) return Error::from_errno("connect", err);
  return Ok{};
}

std::optional<Endpoint> parse_endpoint(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return std::nullopt;  // bare IPv6 needs []
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value == 0 || value > 65535)
    return std::nullopt;
  return Endpoint{host, static_cast<std::uint16_t>(value)};
}

Result<std::vector<wire::Address>> resolve(const std::string& host) {
  if (auto literal = wire::Address::parse(host)) return std::vector<wire::Address>{*literal};
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) return Error{"cannot resolve " + host + ": " + gai_strerror(rc)};
  std::vector<wire::Address> out;
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    sockaddr_storage s{};
    std::memcpy(&s, ai->ai_addr, std::min<std::size_t>(ai->ai_addrlen, sizeof s));
    if (auto a = from_sockaddr(s); a && std::find(out.begin(), out.end(), a->first) == out.end())
      out.push_back(a->first);
  }
  freeaddrinfo(found);
  if (out.empty()) return Error{"cannot resolve " + host + ": no address"};
  return out;
}

Result<core::FlowKey> connection_flow(int fd) {
  sockaddr_storage local{}, peer{};
  socklen_t llen = sizeof local, plen = sizeof peer;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) < 0) return Error::from_errno("getsockname");
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) < 0) return Error::from_errno("getpeername");
  auto l = from_sockaddr(local);
  auto p = from_sockaddr(peer);
  if (!l || !p) return Error{"connection is not IPv4 or IPv6"};
  return core::FlowKey{l->first, p->first, l->second, p->second};
}

Result<std::optional<std::size_t>> read_some(int fd, std::span<char> buffer) {
  for (;;) {
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n >= 0) return std::optional<std::size_t>(static_cast<std::size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::optional<std::size_t>();
    return Error::from_errno("read");
  }
}

Result<std::size_t> write_some(int fd, std::span<const char> data) {
  for (;;) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    return Error::from_errno("write");
  }
}

}  // namespace nfqtrace::sys
