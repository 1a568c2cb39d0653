// ICMP and ICMPv6 errors (time exceeded, destination unreachable) and the TCP
// header they quote. Anyone can send these: every field is checked, nothing
// is trusted beyond what the bytes show.
#pragma once

#include <cstdint>
#include <optional>

#include "nfqtrace/wire/address.hpp"
#include "nfqtrace/wire/bytes.hpp"
#include "nfqtrace/wire/parse.hpp"

namespace nfqtrace::wire {

enum class IcmpKind : std::uint8_t { time_exceeded, unreachable };

// The header of the packet that caused the error, as the router saw it.
// RFC 792 routers quote 8 bytes of TCP: ports and sequence number only;
// RFC 1812 and RFC 4443 ones as much as fits, often the whole probe.
struct QuotedTcp {
  Family family = Family::v4;
  Address src, dst;
  std::uint8_t ttl = 0;             // what was left of the TTL at the router
  std::uint8_t traffic_class = 0;   // IPv4 TOS or IPv6 traffic class: DSCP << 2 | ECN
  bool dont_fragment = false;       // IPv4 only
  std::uint16_t ip_id = 0;          // IPv4 only
  std::uint32_t flow_label = 0;     // IPv6 only
  std::uint16_t ip_length_field = 0;  // IPv4 total length, IPv6 payload length
  std::uint32_t ip_payload_len = 0; // TCP header + payload, from the IP length field
  std::uint16_t sport = 0, dport = 0;
  std::uint32_t seq = 0;
  std::optional<std::uint32_t> ack;  // when the router quoted at least 12 bytes
  std::uint16_t quoted_tcp_bytes = 0;
  // The quoted TCP header and payload, as far as the router quoted them (a
  // view into the message: valid as long as its bytes are).
  Bytes tcp;
};

// An MPLS label stack entry (RFC 4950), as a router that forwarded the probe
// by label reports it in an RFC 4884 extension.
struct MplsEntry {
  std::uint32_t label = 0;  // 20 bits
  std::uint8_t tc = 0;      // traffic class (the former EXP bits), 3 bits
  bool bottom = false;      // S: the bottom of the stack
  std::uint8_t ttl = 0;
  bool operator==(const MplsEntry&) const = default;
};
inline constexpr std::size_t max_mpls_entries = 16;
struct MplsStack {
  MplsEntry entries[max_mpls_entries];
  std::uint8_t count = 0;
};

// The MPLS label stacks in an RFC 4884 extension structure (class 1, c-type
// 1 objects, RFC 4950), in order. A structure whose checksum is wrong, or
// whose objects do not fit it, gives bad_extension; other objects are
// passed over.
Parsed<MplsStack> parse_mpls_extension(Bytes extensions);

struct IcmpError {
  Family family = Family::v4;
  Address from;                  // the router (or host) that answered
  Address to;                    // us
  std::uint8_t reply_ttl = 0;    // TTL / hop limit the reply arrived with
  IcmpKind kind = IcmpKind::time_exceeded;
  std::uint8_t type = 0, code = 0;
  QuotedTcp quote;
  Bytes extensions;              // RFC 4884 extension structure, if any
};

// An IPv4 datagram as a raw IPPROTO_ICMP socket delivers it (IP header first).
Parsed<IcmpError> parse_icmp4(Bytes datagram);

// An ICMPv6 message as a raw IPPROTO_ICMPV6 socket delivers it (no IPv6
// header: its addresses and hop limit come from the socket's ancillary data).
Parsed<IcmpError> parse_icmp6(Bytes message, const Address& from, const Address& to,
                              std::uint8_t hop_limit);

// A whole IPv4 or IPv6 packet carrying ICMP or ICMPv6, as the queue hands it
// over: `wire_len` beyond the bytes means the copy was cut short, and then
// only the RFC 4884 extensions may be missing. not_icmp_error for another
// transport.
Parsed<IcmpError> parse_icmp_packet(Bytes packet, std::uint32_t wire_len);

}  // namespace nfqtrace::wire
