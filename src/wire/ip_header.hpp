// Reading the IPv4 or IPv6 header in front of a transport header: shared by
// the queue-side parser and the parser of packets quoted in ICMP errors.
#pragma once

#include <cstdint>

#include "nfqtrace/wire/address.hpp"
#include "nfqtrace/wire/parse.hpp"

namespace nfqtrace::wire::detail {

struct IpHeader {
  Family family = Family::v4;
  Address src, dst;
  std::uint8_t ttl = 0;
  std::uint16_t ip_id = 0;
  std::uint32_t flow_label = 0;
  std::uint8_t traffic_class = 0; // IPv4 TOS or IPv6 traffic class: DSCP << 2 | ECN
  bool dont_fragment = false;     // IPv4
  std::uint16_t header_len = 0;   // up to the transport header
  std::uint8_t protocol = 0;      // the transport after any extension headers
  std::uint32_t length_field = 0; // IPv4 total length or IPv6 payload length
  bool routing_header = false;
  bool later_fragment = false;
};

// Reads the header at the start of `b`. Everything up to the transport
// header must be inside `b`; length fields are reported, not checked.
Parsed<IpHeader> parse_ip_header(Bytes b);

}  // namespace nfqtrace::wire::detail
