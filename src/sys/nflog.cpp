#include "nfqtrace/sys/nflog.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "netfilter_socket.hpp"
#include "nfqtrace/sys/clock.hpp"

namespace nfqtrace::sys {
namespace {

constexpr const char* proc_log_path = "/proc/net/netfilter/nfnetlink_log";
constexpr std::size_t receive_buffer_size = 0x10000 + 8192;

// The packet's full length from its IP header: NFLOG, unlike NFQUEUE, does
// not say how long a packet it cut was. A GRO packet beyond 64 KiB (BIG TCP)
// has 0 there; then only the captured length is known.
std::uint32_t length_from_ip_header(wire::Bytes data) {
  const auto captured = static_cast<std::uint32_t>(data.size());
  if (data.empty()) return 0;
  const int version = data[0] >> 4;
  std::uint32_t total = 0;
  if (version == 4 && data.size() >= 20) total = wire::load16(data, 2);
  if (version == 6 && data.size() >= 40) total = 40u + wire::load16(data, 4);
  return std::max(total, captured);
}

}  // namespace

struct NfLog::Impl {
  detail::NetfilterSocket socket;
  std::uint16_t group = 0;
  std::vector<char> receive_buffer;
  bool bound = false;  // ours to unbind
  // The instance numbers its copies: a gap is copies the kernel could not
  // hand us (our socket buffer was full).
  std::optional<std::uint32_t> last_seq;
  std::uint64_t lost = 0;

  Impl(detail::NetfilterSocket s, std::uint16_t g)
      : socket(std::move(s)), group(g), receive_buffer(receive_buffer_size) {}

  ~Impl() {
    if (!bound) return;
    alignas(nlmsghdr) std::array<char, detail::request_buffer_size> buffer{};
    nlmsghdr* message = nflog_nlmsg_put_header(buffer.data(), NFULNL_MSG_CONFIG, AF_UNSPEC, group);
    nflog_attr_put_cfg_cmd(message, NFULNL_CFG_CMD_UNBIND);
    (void)socket.send(message);
  }

  bool parse(const nlmsghdr& message, LoggedPacket& packet) {
    if ((message.nlmsg_type >> 8) != NFNL_SUBSYS_ULOG ||
        (message.nlmsg_type & 0xff) != NFULNL_MSG_PACKET) {
      return false;
    }
    std::array<nlattr*, NFULA_MAX + 1> attributes{};
    if (nflog_nlmsg_parse(&message, attributes.data()) < 0) return false;
    count_gap(attributes[NFULA_SEQ]);
    const nlattr* payload = attributes[NFULA_PAYLOAD];
    if (payload == nullptr) return false;
    packet.data = wire::Bytes(static_cast<const std::uint8_t*>(mnl_attr_get_payload(payload)),
                              mnl_attr_get_payload_len(payload));
    packet.wire_len = length_from_ip_header(packet.data);
    packet.at = detail::arrival_time(detail::stamp_ns(attributes[NFULA_TIMESTAMP]));
    const nlattr* prefix = attributes[NFULA_PREFIX];
    packet.outgoing = false;
    if (prefix != nullptr) {
      // NUL-terminated by the kernel; bounded anyway.
      const char* text = mnl_attr_get_str(prefix);
      packet.outgoing = std::string_view(text, ::strnlen(text, mnl_attr_get_payload_len(prefix))) ==
                        outgoing_log_prefix;
    }
    const nlattr* out_dev = attributes[NFULA_IFINDEX_OUTDEV];
    packet.out_ifindex = out_dev != nullptr ? ntohl(mnl_attr_get_u32(out_dev)) : 0;
    const nlattr* in_dev = attributes[NFULA_IFINDEX_INDEV];
    packet.in_ifindex = in_dev != nullptr ? ntohl(mnl_attr_get_u32(in_dev)) : 0;
    return true;
  }

  void count_gap(const nlattr* seq_attribute) {
    if (seq_attribute == nullptr) return;
    const std::uint32_t seq = ntohl(mnl_attr_get_u32(seq_attribute));
    if (last_seq) lost += static_cast<std::uint32_t>(seq - *last_seq - 1);
    last_seq = seq;
  }
};

NfLog::NfLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NfLog::NfLog(NfLog&&) noexcept = default;
NfLog& NfLog::operator=(NfLog&&) noexcept = default;
NfLog::~NfLog() = default;

Result<NfLog> NfLog::open(std::uint16_t group, std::uint32_t copy_range) {
  Result<detail::NetfilterSocket> socket = detail::NetfilterSocket::open(8 << 20);
  if (!socket) return socket.error();
  auto impl = std::make_unique<Impl>(std::move(socket).value(), group);
  std::span<char> buffer(impl->receive_buffer);
  const std::string name = "NFLOG group " + std::to_string(group);
  // Nothing waits for a logged copy: whatever arrives early is just dropped.
  auto ignore = [](const nlmsghdr&) {};

  alignas(nlmsghdr) std::array<char, detail::request_buffer_size> request_buffer{};
  nlmsghdr* bind = nflog_nlmsg_put_header(request_buffer.data(), NFULNL_MSG_CONFIG, AF_UNSPEC, group);
  nflog_attr_put_cfg_cmd(bind, NFULNL_CFG_CMD_BIND);
  if (Status bound = impl->socket.request(bind, buffer, "bind " + name, ignore); !bound) {
    // EPERM: another socket owns the group (or CAP_NET_ADMIN is missing).
    const int code = bound.error().code;
    const std::vector<std::uint64_t> row = detail::proc_netfilter_row(proc_log_path, group);
    if (code == EBUSY || (code == EPERM && row.size() >= 2 && row[1] != impl->socket.portid())) {
      return Error{name + " is already in use by another process; choose another group (--nflog-group)"};
    }
    return bound.error();
  }
  impl->bound = true;

  request_buffer.fill(0);
  nlmsghdr* config = nflog_nlmsg_put_header(request_buffer.data(), NFULNL_MSG_CONFIG, AF_UNSPEC, group);
  nflog_attr_put_cfg_mode(config, NFULNL_COPY_PACKET, std::min<std::uint32_t>(copy_range, 0xffff));
  // Deliver each packet at once instead of gathering a batch: its arrival
  // time matters. The timeout (in 1/100 s) bounds any batching left.
  mnl_attr_put_u32(config, NFULA_CFG_QTHRESH, htonl(1));
  mnl_attr_put_u32(config, NFULA_CFG_TIMEOUT, htonl(1));
  mnl_attr_put_u16(config, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
  if (Status configured = impl->socket.request(config, buffer, "configure " + name, ignore);
      !configured) {
    return configured.error();
  }
  return NfLog(std::move(impl));
}

int NfLog::fd() const { return impl_->socket.fd(); }

Result<std::size_t> NfLog::receive(const std::function<void(const LoggedPacket&)>& on_packet) {
  Impl& impl = *impl_;
  std::size_t packets = 0;
  LoggedPacket packet;
  for (;;) {
    Result<std::size_t> got = impl.socket.receive_datagram(impl.receive_buffer);
    if (!got) return got.error();
    if (*got == 0) return packets;
    detail::for_each_message(std::span<const char>(impl.receive_buffer.data(), *got),
                             [&](const nlmsghdr& message) {
                               if (!impl.parse(message, packet)) return;
                               ++packets;
                               on_packet(packet);
                             });
  }
}

std::uint64_t NfLog::lost() const { return impl_->lost; }

}  // namespace nfqtrace::sys
