#include "nfqtrace/sys/nfqueue.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

// libnetfilter_queue.h pulls in libnfnetlink.h, whose macros and inline code
// are older than our warning set.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libnetfilter_queue/libnetfilter_queue.h>
#pragma GCC diagnostic pop

#include "netfilter_socket.hpp"

namespace nfqtrace::sys {
namespace {

constexpr const char* proc_queue_path = "/proc/net/netfilter/nfnetlink_queue";

// One netlink datagram: a packet message carries at most 0xffff payload bytes
// plus its attributes. Allocated once per queue.
constexpr std::size_t receive_buffer_size = 0x10000 + 8192;
// Room for a verdict message without payload.
constexpr std::size_t verdict_header_room = 256;

// ids wrap around at 2^32; the kernel compares them the same way.
bool id_after(std::uint32_t id, std::uint32_t other) {
  return static_cast<std::int32_t>(id - other) > 0;
}

std::uint32_t attribute_u32(const nlattr* attribute) {
  return ntohl(mnl_attr_get_u32(attribute));
}

}  // namespace

struct NfQueue::Impl {
  detail::NetfilterSocket socket;
  std::uint16_t queue_id = 0;
  std::vector<char> receive_buffer;
  std::vector<char> send_buffer;  // grows once to the largest modified packet
  std::optional<std::uint32_t> highest_accepted;  // pending batch verdict
  bool bound = false;  // ours to unbind

  Impl(detail::NetfilterSocket s, std::uint16_t id)
      : socket(std::move(s)), queue_id(id), receive_buffer(receive_buffer_size),
        send_buffer(verdict_header_room) {}

  ~Impl() {
    if (!bound) return;
    // Unbinding drops every packet still queued: accept those pending (read
    // or not) first, so closing the queue never costs the connection a packet.
    drain_accepting_all();
    alignas(nlmsghdr) std::array<char, detail::request_buffer_size> buffer{};
    nlmsghdr* message = nfq_nlmsg_put(buffer.data(), NFQNL_MSG_CONFIG, queue_id);
    nfq_nlmsg_cfg_put_cmd(message, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
    (void)socket.send(message);
  }

  Status flush() {
    if (!highest_accepted) return Ok{};
    alignas(nlmsghdr) std::array<char, verdict_header_room> buffer{};
    nlmsghdr* message = nfq_nlmsg_put(buffer.data(), NFQNL_MSG_VERDICT_BATCH, queue_id);
    nfq_nlmsg_verdict_put(message, static_cast<int>(*highest_accepted), NF_ACCEPT);
    highest_accepted.reset();
    if (Status sent = socket.send(message); !sent) {
      return Error::from_errno("send NFQUEUE batch verdict", sent.error().code);
    }
    return Ok{};
  }

  void drain_accepting_all() {
    // Bounded: with the rule still in place, traffic could keep coming.
    for (int datagrams = 0; datagrams < 65536; ++datagrams) {
      Result<std::size_t> got = socket.receive_datagram(receive_buffer);
      if (!got || *got == 0) break;
      QueuedPacket packet;
      detail::for_each_message(std::span<const char>(receive_buffer.data(), *got),
                               [&](const nlmsghdr& message) {
                                 if (!parse(message, packet)) return;
                                 if (!highest_accepted || id_after(packet.id, *highest_accepted)) {
                                   highest_accepted = packet.id;
                                 }
                               });
    }
    (void)flush();
  }

  // Packets that reach us before open() returns (between the bind and the
  // acknowledgement of the configuration) are accepted unseen.
  void accept_unseen(const nlmsghdr& message) {
    QueuedPacket packet;
    if (!parse(message, packet)) return;
    alignas(nlmsghdr) std::array<char, verdict_header_room> buffer{};
    nlmsghdr* verdict = nfq_nlmsg_put(buffer.data(), NFQNL_MSG_VERDICT, queue_id);
    nfq_nlmsg_verdict_put(verdict, static_cast<int>(packet.id), NF_ACCEPT);
    (void)socket.send(verdict);
  }

  // Fills `packet` from a packet message; false for anything else.
  static bool parse(const nlmsghdr& message, QueuedPacket& packet) {
    if ((message.nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE ||
        (message.nlmsg_type & 0xff) != NFQNL_MSG_PACKET) {
      return false;
    }
    std::array<nlattr*, NFQA_MAX + 1> attributes{};
    if (nfq_nlmsg_parse(&message, attributes.data()) < 0) return false;
    const nlattr* header_attribute = attributes[NFQA_PACKET_HDR];
    if (header_attribute == nullptr ||
        mnl_attr_get_payload_len(header_attribute) < sizeof(nfqnl_msg_packet_hdr)) {
      return false;
    }
    nfqnl_msg_packet_hdr header{};
    std::memcpy(&header, mnl_attr_get_payload(header_attribute), sizeof header);

    packet = QueuedPacket{};
    packet.id = ntohl(header.packet_id);
    if (const nlattr* payload = attributes[NFQA_PAYLOAD]) {
      packet.data = wire::Bytes(static_cast<const std::uint8_t*>(mnl_attr_get_payload(payload)),
                                mnl_attr_get_payload_len(payload));
    }
    // NFQA_CAP_LEN is only there when the copy was cut short.
    packet.wire_len = attributes[NFQA_CAP_LEN] != nullptr
                          ? attribute_u32(attributes[NFQA_CAP_LEN])
                          : static_cast<std::uint32_t>(packet.data.size());
    if (attributes[NFQA_IFINDEX_OUTDEV]) packet.out_ifindex = attribute_u32(attributes[NFQA_IFINDEX_OUTDEV]);
    if (attributes[NFQA_IFINDEX_INDEV]) packet.in_ifindex = attribute_u32(attributes[NFQA_IFINDEX_INDEV]);
    if (attributes[NFQA_MARK]) packet.mark = attribute_u32(attributes[NFQA_MARK]);
    if (attributes[NFQA_SKB_INFO]) {
      const std::uint32_t info = attribute_u32(attributes[NFQA_SKB_INFO]);
      packet.checksum_not_ready = (info & NFQA_SKB_CSUMNOTREADY) != 0;
      packet.gso = (info & NFQA_SKB_GSO) != 0;
    }
    packet.stamp_ns = detail::stamp_ns(attributes[NFQA_TIMESTAMP]);
    return true;
  }
};

namespace {

// Explains a refused bind. The kernel answers EPERM when another netlink
// socket owns the queue, but EPERM also means a missing CAP_NET_ADMIN: the
// queue table in /proc tells the two apart.
Error bind_error(std::uint16_t queue_id, int code, std::uint32_t our_portid) {
  const std::string queue = "NFQUEUE " + std::to_string(queue_id);
  const std::vector<std::uint64_t> row = detail::proc_netfilter_row(proc_queue_path, queue_id);
  const bool owned_by_other = row.size() >= 2 && row[1] != our_portid;
  if (code == EBUSY || code == EEXIST || (code == EPERM && owned_by_other)) {
    std::string what = queue + " is already in use by another process";
    if (owned_by_other) what += " (netlink port " + std::to_string(row[1]) + ")";
    // No errno in the message: "Operation not permitted" would mislead.
    return Error{what + "; choose another queue number (--queue-id)"};
  }
  return Error::from_errno("bind " + queue, code);
}

}  // namespace

NfQueue::NfQueue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NfQueue::NfQueue(NfQueue&&) noexcept = default;
NfQueue& NfQueue::operator=(NfQueue&&) noexcept = default;
NfQueue::~NfQueue() = default;

Result<NfQueue> NfQueue::open(const QueueOptions& options) {
  // Room for the whole queue of copies (each costs its payload plus skb
  // overhead), within sane bounds.
  const std::uint64_t wanted =
      std::uint64_t{options.max_len} * (std::uint64_t{std::min<std::uint32_t>(options.copy_range, 0xffff)} + 1024);
  const int buffer_bytes = static_cast<int>(std::clamp<std::uint64_t>(wanted, 1u << 20, 64u << 20));
  Result<detail::NetfilterSocket> socket = detail::NetfilterSocket::open(buffer_bytes);
  if (!socket) return socket.error();

  auto impl = std::make_unique<Impl>(std::move(socket).value(), options.queue_id);
  auto on_other = [&impl = *impl](const nlmsghdr& message) { impl.accept_unseen(message); };
  std::span<char> buffer(impl->receive_buffer);
  const std::string queue = "NFQUEUE " + std::to_string(options.queue_id);

  alignas(nlmsghdr) std::array<char, detail::request_buffer_size> request_buffer{};
  nlmsghdr* bind = nfq_nlmsg_put(request_buffer.data(), NFQNL_MSG_CONFIG, options.queue_id);
  nfq_nlmsg_cfg_put_cmd(bind, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
  if (Status bound = impl->socket.request(bind, buffer, "bind " + queue, on_other); !bound) {
    return bind_error(options.queue_id, bound.error().code, impl->socket.portid());
  }
  impl->bound = true;

  request_buffer.fill(0);
  nlmsghdr* config = nfq_nlmsg_put(request_buffer.data(), NFQNL_MSG_CONFIG, options.queue_id);
  nfq_nlmsg_cfg_put_params(config, NFQNL_COPY_PACKET,
                           static_cast<int>(std::min<std::uint32_t>(options.copy_range, 0xffff)));
  nfq_nlmsg_cfg_put_qmaxlen(config, options.max_len);
  const std::uint32_t flags = (options.fail_open ? NFQA_CFG_F_FAIL_OPEN : 0u) |
                              (options.gso ? NFQA_CFG_F_GSO : 0u);
  mnl_attr_put_u32(config, NFQA_CFG_FLAGS, htonl(flags));
  mnl_attr_put_u32(config, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
  if (Status configured = impl->socket.request(config, buffer, "configure " + queue, on_other);
      !configured) {
    return configured.error();
  }
  return NfQueue(std::move(impl));
}

int NfQueue::fd() const { return impl_->socket.fd(); }

Result<std::size_t> NfQueue::receive(const std::function<void(const QueuedPacket&)>& on_packet) {
  Impl& impl = *impl_;
  std::size_t packets = 0;
  QueuedPacket packet;
  for (;;) {
    Result<std::size_t> got = impl.socket.receive_datagram(impl.receive_buffer);
    if (!got) {
      (void)impl.flush();
      return got.error();
    }
    if (*got == 0) break;
    detail::for_each_message(std::span<const char>(impl.receive_buffer.data(), *got),
                             [&](const nlmsghdr& message) {
                               // NLMSG_ERROR here answers a verdict for a packet
                               // the kernel no longer holds; nothing to do.
                               if (!Impl::parse(message, packet)) return;
                               ++packets;
                               on_packet(packet);
                             });
  }
  if (Status flushed = impl.flush(); !flushed) return flushed.error();
  return packets;
}

void NfQueue::accept(std::uint32_t id) {
  std::optional<std::uint32_t>& highest = impl_->highest_accepted;
  if (!highest || id_after(id, *highest)) highest = id;
}

Status NfQueue::accept_modified(std::uint32_t id, wire::Bytes whole_packet) {
  Impl& impl = *impl_;
  if (whole_packet.size() > 0xffff) {
    return Error{"accept modified packet: longer than 65535 bytes", EMSGSIZE};
  }
  // Earlier packets of the batch leave first, keeping the connection's order.
  if (Status flushed = impl.flush(); !flushed) return flushed;
  const std::size_t needed = verdict_header_room + whole_packet.size();
  if (impl.send_buffer.size() < needed) impl.send_buffer.resize(needed);
  nlmsghdr* message = nfq_nlmsg_put(impl.send_buffer.data(), NFQNL_MSG_VERDICT, impl.queue_id);
  nfq_nlmsg_verdict_put(message, static_cast<int>(id), NF_ACCEPT);
  nfq_nlmsg_verdict_put_pkt(message, whole_packet.data(), static_cast<std::uint32_t>(whole_packet.size()));
  if (Status sent = impl.socket.send(message); !sent) {
    return Error::from_errno("send NFQUEUE verdict with modified packet", sent.error().code);
  }
  return Ok{};
}

Status NfQueue::drop(std::uint32_t id) {
  Impl& impl = *impl_;
  if (Status flushed = impl.flush(); !flushed) return flushed;
  alignas(nlmsghdr) std::array<char, verdict_header_room> buffer{};
  nlmsghdr* message = nfq_nlmsg_put(buffer.data(), NFQNL_MSG_VERDICT, impl.queue_id);
  nfq_nlmsg_verdict_put(message, static_cast<int>(id), NF_DROP);
  if (Status sent = impl.socket.send(message); !sent) {
    return Error::from_errno("send NFQUEUE drop verdict", sent.error().code);
  }
  return Ok{};
}

Status NfQueue::flush_verdicts() { return impl_->flush(); }

core::Instant arrival_time(const QueuedPacket& packet) {
  return detail::arrival_time(packet.stamp_ns);
}

Result<QueueCounters> NfQueue::counters() const {
  // queue_num peer_portid queue_total copy_mode copy_range queue_dropped
  // user_dropped id_sequence 1
  const std::vector<std::uint64_t> row = detail::proc_netfilter_row(proc_queue_path, impl_->queue_id);
  if (row.size() < 7) {
    return Error{"read " + std::string(proc_queue_path) + ": no line for queue " +
                     std::to_string(impl_->queue_id),
                 ENOENT};
  }
  QueueCounters counters;
  counters.queue_dropped = row[5];
  counters.user_dropped = row[6];
  return counters;
}

}  // namespace nfqtrace::sys
