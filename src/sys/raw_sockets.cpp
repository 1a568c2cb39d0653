#include "nfqtrace/sys/raw_sockets.hpp"

// glibc's netinet/in.h first: included after a linux/ header it leaves
// struct in6_pktinfo to the kernel headers, which linux/icmp.h lacks.
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <sys/socket.h>
#include <linux/icmp.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "nfqtrace/sys/clock.hpp"

// The CMSG_* and ICMP6_FILTER_* macros are C: casts and int arithmetic.
#define NFQTRACE_C_MACROS_BEGIN                            \
  _Pragma("GCC diagnostic push")                           \
  _Pragma("GCC diagnostic ignored \"-Wold-style-cast\"")   \
  _Pragma("GCC diagnostic ignored \"-Wcast-align\"")       \
  _Pragma("GCC diagnostic ignored \"-Wsign-conversion\"")  \
  _Pragma("GCC diagnostic ignored \"-Wconversion\"")
#define NFQTRACE_C_MACROS_END _Pragma("GCC diagnostic pop")

namespace nfqtrace::sys {
namespace {

// Ancillary data: room for every control message we send or ask for.
constexpr std::size_t control_room = 256;
// ICMP errors quote at most 576 (IPv4) or 1280 (IPv6) bytes; routers that
// quote more get cut here, which still leaves every header we need.
constexpr std::size_t icmp_buffer_size = 16384;

Status set_int_option(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof value) < 0) return Error::from_errno(what);
  return Ok{};
}

// <linux/in6.h>'s IPV6_FREEBIND (Linux 4.15), which glibc's headers lack.
constexpr int ipv6_freebind = 78;

Result<UniqueFd> open_probe_socket(int family, std::uint32_t mark) {
  UniqueFd fd(socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW));
  if (!fd.valid()) {
    return Error::from_errno(family == AF_INET ? "open IPv4 raw socket" : "open IPv6 raw socket");
  }
  // IPPROTO_RAW implies a caller-built header in both families.
  if (setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) {
    return Error::from_errno("set SO_MARK on probe socket");
  }
  // A gateway (--forward) sends probes with the inner host's address: IPv6
  // takes a source that is not ours only from a "free bind" socket (IPv4's
  // raw header needs nothing).
  if (family == AF_INET6) {
    const int free_bind = 1;
    if (setsockopt(fd.get(), IPPROTO_IPV6, ipv6_freebind, &free_bind, sizeof free_bind) < 0) {
      return Error::from_errno("set IPV6_FREEBIND on probe socket");
    }
  }
  // It receives nothing, but asking for stamps turns on the kernel's
  // stamping of arriving packets: queued ICMP replies and logged peer
  // packets then carry their arrival time, for exact RTTs.
  const int on = 1;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  return fd;
}

// Sends `packet` as is, with `info` as the one ancillary message.
template <typename PacketInfo>
Status send_with_info(int fd, wire::Bytes packet, const void* destination, socklen_t destination_len,
                      int level, int type, const PacketInfo& info) {
  alignas(cmsghdr) std::array<char, control_room> control{};
  iovec data{const_cast<std::uint8_t*>(packet.data()), packet.size()};
  msghdr message{};
  message.msg_name = const_cast<void*>(destination);
  message.msg_namelen = destination_len;
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control.data();
  NFQTRACE_C_MACROS_BEGIN
  message.msg_controllen = CMSG_SPACE(sizeof info);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = level;
  header->cmsg_type = type;
  header->cmsg_len = CMSG_LEN(sizeof info);
  std::memcpy(CMSG_DATA(header), &info, sizeof info);
  NFQTRACE_C_MACROS_END
  for (;;) {
    if (sendmsg(fd, &message, 0) >= 0) return Ok{};
    if (errno != EINTR) return Error::from_errno("send probe");
  }
}

}  // namespace

Result<ProbeSender> ProbeSender::open(std::uint32_t mark) {
  Result<UniqueFd> v4 = open_probe_socket(AF_INET, mark);
  if (!v4) return v4.error();
  // A host without IPv6 still traces over IPv4.
  Result<UniqueFd> v6 = open_probe_socket(AF_INET6, mark);
  if (v6) return ProbeSender(std::move(v4).value(), std::move(v6).value(), 0);
  return ProbeSender(std::move(v4).value(), UniqueFd(), v6.error().code);
}

Status ProbeSender::send(wire::Bytes packet, std::uint32_t out_ifindex) {
  const int version = packet.empty() ? 0 : packet[0] >> 4;
  if (version == 4) {
    if (packet.size() < 20) return Error{"send probe: IPv4 packet shorter than its header", EINVAL};
    sockaddr_in destination{};
    destination.sin_family = AF_INET;
    std::memcpy(&destination.sin_addr, packet.data() + 16, 4);
    // The source steers route selection (policy routing); the interface pins
    // the probe to the path the connection takes.
    in_pktinfo info{};
    info.ipi_ifindex = static_cast<int>(out_ifindex);
    std::memcpy(&info.ipi_spec_dst, packet.data() + 12, 4);
    return send_with_info(v4_.get(), packet, &destination, sizeof destination, IPPROTO_IP,
                          IP_PKTINFO, info);
  }
  if (version == 6) {
    if (!v6_.valid()) return Error::from_errno("send IPv6 probe: no IPv6 raw socket", v6_open_error_);
    if (packet.size() < 40) return Error{"send probe: IPv6 packet shorter than its header", EINVAL};
    // The header goes out exactly as given: flow label and hop limit too.
    sockaddr_in6 destination{};
    destination.sin6_family = AF_INET6;
    std::memcpy(&destination.sin6_addr, packet.data() + 24, 16);
    destination.sin6_scope_id = out_ifindex;  // used only for link-local peers
    in6_pktinfo info{};
    std::memcpy(&info.ipi6_addr, packet.data() + 8, 16);
    info.ipi6_ifindex = out_ifindex;
    return send_with_info(v6_.get(), packet, &destination, sizeof destination, IPPROTO_IPV6,
                          IPV6_PKTINFO, info);
  }
  return Error{"send probe: not an IPv4 or IPv6 packet", EINVAL};
}

Result<IcmpReceiver> IcmpReceiver::open(wire::Family family) {
  const bool v4 = family == wire::Family::v4;
  const int protocol = v4 ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6};
  UniqueFd fd(socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
  if (!fd.valid()) return Error::from_errno(v4 ? "open ICMP socket" : "open ICMPv6 socket");

  // Only errors about our probes interest us; the kernel drops the rest
  // (echo, neighbour discovery...) before they cost a wake-up.
  if (v4) {
    icmp_filter filter{};
    filter.data = ~((1u << ICMP_DEST_UNREACH) | (1u << ICMP_TIME_EXCEEDED));
    if (setsockopt(fd.get(), SOL_RAW, ICMP_FILTER, &filter, sizeof filter) < 0) {
      return Error::from_errno("set ICMP_FILTER");
    }
  } else {
    icmp6_filter filter{};
    NFQTRACE_C_MACROS_BEGIN
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
    ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
    NFQTRACE_C_MACROS_END
    if (setsockopt(fd.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) < 0) {
      return Error::from_errno("set ICMP6_FILTER");
    }
    if (Status s = set_int_option(fd.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "set IPV6_RECVPKTINFO"); !s) {
      return s.error();
    }
    if (Status s = set_int_option(fd.get(), IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "set IPV6_RECVHOPLIMIT"); !s) {
      return s.error();
    }
  }
  // Arrival stamped by the kernel: RTTs do not include our own latency.
  if (Status s = set_int_option(fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, 1, "set SO_TIMESTAMPNS"); !s) {
    return s.error();
  }
  // A burst of replies should wait in the socket, not be dropped. Optional.
  const int receive_buffer = 4 << 20;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) < 0) {
    (void)setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
  return IcmpReceiver(family, std::move(fd));
}

Result<std::size_t> IcmpReceiver::receive(const std::function<void(const IcmpDatagram&)>& on_datagram) {
  alignas(std::max_align_t) std::array<std::uint8_t, icmp_buffer_size> buffer;
  alignas(cmsghdr) std::array<char, control_room> control;
  std::size_t count = 0;
  for (;;) {
    sockaddr_in6 from{};
    iovec data{buffer.data(), buffer.size()};
    msghdr message{};
    message.msg_name = &from;
    message.msg_namelen = sizeof from;
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    const ssize_t got = recvmsg(fd_.get(), &message, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return count;
      return Error::from_errno(family_ == wire::Family::v4 ? "read ICMP socket" : "read ICMPv6 socket");
    }

    IcmpDatagram datagram;
    datagram.family = family_;
    datagram.data = wire::Bytes(buffer.data(), static_cast<std::size_t>(got));
    bool stamped = false;
    NFQTRACE_C_MACROS_BEGIN
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
      const void* payload = CMSG_DATA(header);
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_TIMESTAMPNS) {
        timespec stamp{};
        std::memcpy(&stamp, payload, sizeof stamp);
        datagram.at = instant_from_realtime(std::int64_t{stamp.tv_sec} * 1'000'000'000 + stamp.tv_nsec);
        stamped = true;
      } else if (header->cmsg_level == IPPROTO_IPV6 && header->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo info{};
        std::memcpy(&info, payload, sizeof info);
        datagram.to = wire::Address::v6(wire::Bytes(info.ipi6_addr.s6_addr, 16));
      } else if (header->cmsg_level == IPPROTO_IPV6 && header->cmsg_type == IPV6_HOPLIMIT) {
        int hop_limit = 0;
        std::memcpy(&hop_limit, payload, sizeof hop_limit);
        datagram.hop_limit = static_cast<std::uint8_t>(hop_limit);
      }
    }
    NFQTRACE_C_MACROS_END
    if (!stamped) datagram.at = now();
    if (family_ == wire::Family::v6) {
      datagram.from = wire::Address::v6(wire::Bytes(from.sin6_addr.s6_addr, 16));
    }
    ++count;
    on_datagram(datagram);
  }
}

}  // namespace nfqtrace::sys
