#include "netfilter_socket.hpp"

#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "nfqtrace/sys/clock.hpp"

namespace nfqtrace::sys::detail {

bool message_fits(const nlmsghdr* message, int remaining) {
  return mnl_nlmsg_ok(message, remaining);
}

const nlmsghdr* next_message(const nlmsghdr* message, int& remaining) {
  return mnl_nlmsg_next(message, &remaining);
}

int error_code_of(const nlmsghdr& message) {
  if (message.nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) return EBADMSG;
  nlmsgerr error{};
  std::memcpy(&error, mnl_nlmsg_get_payload(&message), sizeof error);
  return -error.error;
}

NetfilterSocket::NetfilterSocket(mnl_socket* socket) : socket_(socket) {}

NetfilterSocket::NetfilterSocket(NetfilterSocket&& other) noexcept
    : socket_(std::exchange(other.socket_, nullptr)), next_sequence_(other.next_sequence_) {}

NetfilterSocket& NetfilterSocket::operator=(NetfilterSocket&& other) noexcept {
  if (this != &other) {
    if (socket_ != nullptr) mnl_socket_close(socket_);
    socket_ = std::exchange(other.socket_, nullptr);
    next_sequence_ = other.next_sequence_;
  }
  return *this;
}

NetfilterSocket::~NetfilterSocket() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

int NetfilterSocket::fd() const { return mnl_socket_get_fd(socket_); }

std::uint32_t NetfilterSocket::portid() const { return mnl_socket_get_portid(socket_); }

Result<NetfilterSocket> NetfilterSocket::open(int receive_buffer_bytes) {
  mnl_socket* raw = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (raw == nullptr) return Error::from_errno("open netfilter netlink socket");
  NetfilterSocket socket(raw);
  if (mnl_socket_bind(raw, 0, MNL_SOCKET_AUTOPID) < 0) {
    return Error::from_errno("bind netfilter netlink socket");
  }
  int one = 1;
  // A full socket buffer would otherwise surface as ENOBUFS on the next
  // recv(); the kernel counts such losses itself (user_dropped), and with
  // fail-open the packet is accepted rather than lost.
  if (mnl_socket_setsockopt(raw, NETLINK_NO_ENOBUFS, &one, sizeof one) < 0) {
    return Error::from_errno("set NETLINK_NO_ENOBUFS");
  }
  // Error answers need not echo a whole modified packet back. Optional.
  (void)mnl_socket_setsockopt(raw, NETLINK_CAP_ACK, &one, sizeof one);

  const int fd = mnl_socket_get_fd(raw);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes,
                 sizeof receive_buffer_bytes) < 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes,
                 sizeof receive_buffer_bytes) < 0) {
    return Error::from_errno("set netlink receive buffer size");
  }
  return socket;
}

Status NetfilterSocket::send(const nlmsghdr* message) {
  for (;;) {
    if (mnl_socket_sendto(socket_, message, message->nlmsg_len) >= 0) return Ok{};
    if (errno != EINTR) return Error::from_errno("send netfilter netlink message");
  }
}

Result<std::size_t> NetfilterSocket::receive_datagram(std::span<char> buffer) {
  for (;;) {
    const ssize_t got = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
    // EINTR: try again. ENOBUFS cannot come with NETLINK_NO_ENOBUFS set, but
    // if it does it only reports an earlier loss: keep reading.
    if (errno != EINTR && errno != ENOBUFS) {
      return Error::from_errno("read netfilter netlink socket");
    }
  }
}

Status NetfilterSocket::request(nlmsghdr* request, std::span<char> buffer, const std::string& what,
                                const std::function<void(const nlmsghdr&)>& on_other) {
  request->nlmsg_flags |= NLM_F_ACK;
  request->nlmsg_seq = next_sequence_++;
  if (Status sent = send(request); !sent) return Error::from_errno(what, sent.error().code);

  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    Result<std::size_t> got = receive_datagram(buffer);
    if (!got) return Error::from_errno(what, got.error().code);
    if (*got == 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
      pollfd readable{fd(), POLLIN, 0};
      if (left.count() <= 0 || poll(&readable, 1, static_cast<int>(left.count()) + 1) == 0) {
        return Error{what + ": the kernel did not answer", ETIMEDOUT};
      }
      continue;
    }
    bool answered = false;
    int code = 0;
    for_each_message(std::span<const char>(buffer.data(), *got), [&](const nlmsghdr& message) {
      if (message.nlmsg_type == NLMSG_ERROR && message.nlmsg_seq == request->nlmsg_seq) {
        answered = true;
        code = error_code_of(message);
      } else {
        on_other(message);
      }
    });
    if (answered) {
      if (code == 0) return Ok{};
      return Error::from_errno(what, code);
    }
  }
}

std::vector<std::uint64_t> proc_netfilter_row(const char* path, std::uint32_t id) {
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream columns(line);
    std::vector<std::uint64_t> row;
    std::uint64_t value = 0;
    while (columns >> value) row.push_back(value);
    if (!row.empty() && row.front() == id) return row;
  }
  return {};
}

namespace {
// A kernel stamp further than this from our clock is not trusted (a
// monotonic EDT stamp on an output path would be decades off).
constexpr auto plausible_stamp_age = std::chrono::minutes(1);
}  // namespace

std::int64_t stamp_ns(const nlattr* stamp_attribute) {
  if (stamp_attribute == nullptr ||
      mnl_attr_get_payload_len(stamp_attribute) < sizeof(nfulnl_msg_packet_timestamp)) {
    return 0;
  }
  nfulnl_msg_packet_timestamp stamp{};
  std::memcpy(&stamp, mnl_attr_get_payload(stamp_attribute), sizeof stamp);
  const auto seconds = static_cast<std::int64_t>(be64toh(stamp.sec));
  const auto micros = static_cast<std::int64_t>(be64toh(stamp.usec));
  return seconds * 1'000'000'000 + micros * 1'000;
}

core::Instant arrival_time(std::int64_t realtime_ns) {
  const core::Instant read_time = sys::now();
  if (realtime_ns == 0) return read_time;
  const core::Duration age = read_time.wall - core::Duration(realtime_ns);
  if (age > plausible_stamp_age || age < -plausible_stamp_age) return read_time;
  return sys::instant_from_realtime(realtime_ns);
}

}  // namespace nfqtrace::sys::detail
