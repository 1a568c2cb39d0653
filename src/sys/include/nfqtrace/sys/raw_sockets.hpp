// Raw sockets: one to send probes (whole IP packets), one per family to
// receive ICMP errors.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"
#include "nfqtrace/wire/address.hpp"
#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::sys {

// Sends complete IPv4/IPv6 packets (header included). Every packet carries
// SO_MARK `mark`, which our queue rule excludes so probes are not queued back.
class ProbeSender {
 public:
  static Result<ProbeSender> open(std::uint32_t mark);
  // `out_ifindex` (from the queued original, 0 = let routing choose) pins the
  // probe to the interface the connection uses; its source is the packet's.
  Status send(wire::Bytes packet, std::uint32_t out_ifindex);

 private:
  ProbeSender(UniqueFd v4, UniqueFd v6, int v6_open_error)
      : v4_(std::move(v4)), v6_(std::move(v6)), v6_open_error_(v6_open_error) {}
  UniqueFd v4_, v6_;
  // Added: why the IPv6 socket could not be made (errno), so that an IPv6
  // send on a host without IPv6 reports the real cause.
  int v6_open_error_ = 0;
};

struct IcmpDatagram {
  wire::Family family = wire::Family::v4;
  wire::Bytes data;         // IPv4: IP header first; IPv6: the ICMPv6 message
  wire::Address from, to;   // IPv6 only (IPv4 has them in its header)
  std::uint8_t hop_limit = 0;  // IPv6 only
  core::Instant at;         // kernel receive time
};

// Receives ICMP time-exceeded and destination-unreachable messages of one
// family (kernel filters keep the rest away), with kernel timestamps.
class IcmpReceiver {
 public:
  static Result<IcmpReceiver> open(wire::Family family);
  int fd() const { return fd_.get(); }
  // Reads every pending datagram without blocking.
  Result<std::size_t> receive(const std::function<void(const IcmpDatagram&)>& on_datagram);

 private:
  IcmpReceiver(wire::Family family, UniqueFd fd) : family_(family), fd_(std::move(fd)) {}
  wire::Family family_;
  UniqueFd fd_;
};

}  // namespace nfqtrace::sys
