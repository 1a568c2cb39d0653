// Plain TCP sockets for the cooperating client and server: non-blocking,
// with TCP_NODELAY so every protocol line leaves as its own packet (each one
// is a chance to probe).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"
#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::sys {

// Listens on `port` of every address of one family (IPv6: IPv6 only, so
// IPv4 clients arrive on the IPv4 socket with their own addresses).
Result<UniqueFd> tcp_listen(wire::Family family, std::uint16_t port, int backlog = 128);
// The next pending connection, or an invalid fd when there is none.
Result<UniqueFd> tcp_accept(int listen_fd);
// Starts connecting; completion shows as writability, then connect_result().
Result<UniqueFd> tcp_connect(const wire::Address& address, std::uint16_t port);
Status connect_result(int fd);

// HOST:PORT, [v6]:PORT, or a name: every address it resolves to.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<Endpoint> parse_endpoint(const std::string& text);
Result<std::vector<wire::Address>> resolve(const std::string& host);

// The connection as nfqtrace names it: from us (src) to the peer (dst).
Result<core::FlowKey> connection_flow(int fd);

// Reads what is there: 0 bytes read means the peer closed; nullopt means
// nothing to read now.
Result<std::optional<std::size_t>> read_some(int fd, std::span<char> buffer);
// Writes what fits: how many bytes left now (0 when the socket is full).
Result<std::size_t> write_some(int fd, std::span<const char> data);

}  // namespace nfqtrace::sys
