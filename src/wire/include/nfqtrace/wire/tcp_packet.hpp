// A bounds-checked view of an IPv4 or IPv6 packet that carries TCP, as it is
// read from the queue (possibly a truncated copy of a larger, even GSO, packet).
#pragma once

#include <cstdint>
#include <optional>

#include "nfqtrace/wire/address.hpp"
#include "nfqtrace/wire/bytes.hpp"
#include "nfqtrace/wire/parse.hpp"

namespace nfqtrace::wire {

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01;
inline constexpr std::uint8_t syn = 0x02;
inline constexpr std::uint8_t rst = 0x04;
inline constexpr std::uint8_t psh = 0x08;
inline constexpr std::uint8_t ack = 0x10;
inline constexpr std::uint8_t urg = 0x20;
}  // namespace tcp_flag

inline constexpr std::uint8_t ip_proto_tcp = 6;

struct TcpPacket {
  Family family = Family::v4;
  Address src, dst;
  std::uint8_t ttl = 0;           // TTL or hop limit
  std::uint16_t ip_id = 0;        // IPv4 only
  std::uint32_t flow_label = 0;   // IPv6 only
  bool has_routing_header = false;  // IPv6: the pseudo-header would need the final hop
  std::uint16_t ip_header_len = 0;  // IPv6: extension headers included
  std::uint16_t tcp_header_len = 0;
  std::uint16_t sport = 0, dport = 0;
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::uint32_t payload_len = 0;  // the true TCP payload length, captured or not
  Bytes captured;                 // what we hold: headers and a prefix of the payload

  bool has(std::uint8_t flag) const { return (flags & flag) != 0; }
  std::uint32_t end_seq() const { return seq + payload_len; }
  Bytes headers() const { return captured.first(ip_header_len + tcp_header_len); }
  Bytes options() const {
    return captured.subspan(ip_header_len + 20u, tcp_header_len - 20u);
  }
  // The part of the payload that was captured, starting at `seq`.
  Bytes payload() const { return captured.subspan(ip_header_len + tcp_header_len); }
};

// `captured` holds the first bytes of a packet whose full length is
// `wire_len` (equal to captured.size() when nothing was cut). Headers must be
// captured whole; the payload may be cut anywhere.
Parsed<TcpPacket> parse_tcp_packet(Bytes captured, std::uint32_t wire_len);

// SACK blocks (RFC 2018) found in TCP options, at most four.
struct SackBlock {
  std::uint32_t left = 0, right = 0;
};
struct SackBlocks {
  SackBlock blocks[4];
  std::uint8_t count = 0;
};
SackBlocks parse_sack(Bytes options);

// The timestamps option (RFC 7323): the sender's clock, and the last value of
// the other side's that it echoes.
struct Timestamps {
  std::uint32_t val = 0, ecr = 0;
};
std::optional<Timestamps> parse_timestamps(Bytes options);
// Where the timestamps option starts within `options`, if there is one.
std::optional<std::size_t> timestamps_offset(Bytes options);

// True when a is before b in sequence space, or on a timestamp clock (RFC
// 1982 serial arithmetic; RFC 7323 5.3 compares timestamps so).
inline bool seq_before(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b) < 0;
}

}  // namespace nfqtrace::wire
