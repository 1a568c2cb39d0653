// A non-blocking NETLINK_NETFILTER socket (libmnl), shared by the NFQUEUE and
// NFLOG adapters: opening it the way both need, acknowledged configuration
// requests, and reading datagrams until the socket runs dry.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"

struct mnl_socket;
struct nlattr;

namespace nfqtrace::sys::detail {

// Room for a configuration request (a few small attributes).
inline constexpr std::size_t request_buffer_size = 512;

// mnl_nlmsg_ok / mnl_nlmsg_next, declared here without pulling libmnl.h
// into every includer.
bool message_fits(const nlmsghdr* message, int remaining);
const nlmsghdr* next_message(const nlmsghdr* message, int& remaining);

class NetfilterSocket {
 public:
  // `receive_buffer_bytes` is asked for with SO_RCVBUFFORCE (beyond rmem_max,
  // needs CAP_NET_ADMIN), else SO_RCVBUF; bursts then wait in the kernel
  // instead of being lost.
  static Result<NetfilterSocket> open(int receive_buffer_bytes);

  NetfilterSocket(NetfilterSocket&& other) noexcept;
  NetfilterSocket& operator=(NetfilterSocket&& other) noexcept;
  NetfilterSocket(const NetfilterSocket&) = delete;
  NetfilterSocket& operator=(const NetfilterSocket&) = delete;
  ~NetfilterSocket();

  int fd() const;
  std::uint32_t portid() const;

  // Sends one message as built (no acknowledgement asked for).
  Status send(const nlmsghdr* message);

  // Sends `request` with NLM_F_ACK and waits (at most a second) for the
  // kernel's answer; its error code comes back as an Error with `what`.
  // Other messages arriving meanwhile (packets already queued to us) go to
  // `on_other` so none is lost. `buffer` receives the datagrams.
  Status request(nlmsghdr* request, std::span<char> buffer, const std::string& what,
                 const std::function<void(const nlmsghdr&)>& on_other);

  // Reads one datagram into `buffer`; 0 when nothing is pending.
  Result<std::size_t> receive_datagram(std::span<char> buffer);

 private:
  explicit NetfilterSocket(mnl_socket* socket);
  mnl_socket* socket_ = nullptr;
  std::uint32_t next_sequence_ = 1;
};

// Calls `on_message` for each netlink message in a received datagram
// (a template, so the per-packet path builds no std::function).
template <typename OnMessage>
void for_each_message(std::span<const char> datagram, OnMessage&& on_message) {
  int remaining = static_cast<int>(datagram.size());
  const auto* message = static_cast<const nlmsghdr*>(static_cast<const void*>(datagram.data()));
  while (message_fits(message, remaining)) {
    on_message(*message);
    message = next_message(message, remaining);
  }
}

// The kernel's stamp of a packet (NFULA_TIMESTAMP and NFQA_TIMESTAMP share
// their layout), in realtime nanoseconds; 0 when there is none.
std::int64_t stamp_ns(const nlattr* stamp_attribute);
// When a packet arrived: its stamp, else (none, or not plausible) now.
core::Instant arrival_time(std::int64_t stamp_ns);

// The error code an NLMSG_ERROR message carries (0 for a plain ACK).
int error_code_of(const nlmsghdr& message);

// Reads a line-oriented /proc/net/netfilter file and returns the numeric
// columns of the line whose first column is `id`, or an empty vector.
std::vector<std::uint64_t> proc_netfilter_row(const char* path, std::uint32_t id);

}  // namespace nfqtrace::sys::detail
