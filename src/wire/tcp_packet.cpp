#include "nfqtrace/wire/tcp_packet.hpp"

#include <algorithm>

#include "ip_header.hpp"

namespace nfqtrace::wire {

Parsed<TcpPacket> parse_tcp_packet(Bytes captured, std::uint32_t wire_len) {
  if (wire_len < captured.size()) return ParseError::bad_total_length;
  auto ip = detail::parse_ip_header(captured);
  if (!ip) return ip.error();
  if (ip->protocol != ip_proto_tcp) return ParseError::not_tcp;
  if (ip->later_fragment) return ParseError::not_first_fragment;

  // The IP length field is authoritative when it fits the packet; GSO
  // super-packets beyond 64 KiB (BIG TCP) carry 0 and use the packet length.
  std::uint32_t ip_len = ip->family == Family::v4 ? ip->length_field
                                                   : ip->length_field + 40u;
  if (ip->length_field == 0) ip_len = wire_len;
  if (ip_len > wire_len || ip_len < ip->header_len) return ParseError::bad_total_length;

  const std::size_t t = ip->header_len;
  if (captured.size() < t + 20) return ParseError::truncated;
  const std::uint16_t tcp_len = static_cast<std::uint16_t>((captured[t + 12] >> 4) * 4);
  if (tcp_len < 20) return ParseError::bad_header_length;
  if (captured.size() < t + tcp_len) return ParseError::truncated;
  if (ip_len < t + tcp_len) return ParseError::bad_total_length;

  TcpPacket p;
  p.family = ip->family;
  p.src = ip->src;
  p.dst = ip->dst;
  p.ttl = ip->ttl;
  p.ip_id = ip->ip_id;
  p.flow_label = ip->flow_label;
  p.has_routing_header = ip->routing_header;
  p.ip_header_len = ip->header_len;
  p.tcp_header_len = tcp_len;
  p.sport = load16(captured, t);
  p.dport = load16(captured, t + 2);
  p.seq = load32(captured, t + 4);
  p.ack = load32(captured, t + 8);
  p.flags = captured[t + 13];
  p.window = load16(captured, t + 14);
  p.payload_len = ip_len - ip->header_len - tcp_len;
  // Ethernet padding can follow the IP datagram: hold only the datagram.
  p.captured = captured.first(std::min<std::size_t>(captured.size(), ip_len));
  return p;
}

namespace {

// The first option of `kind` (its kind and length bytes included), or an
// empty span: the walk stops at the end-of-options or a malformed length.
Bytes find_option(Bytes options, std::uint8_t wanted) {
  std::size_t i = 0;
  while (i < options.size()) {
    const std::uint8_t kind = options[i];
    if (kind == 0) break;           // end of options
    if (kind == 1) { ++i; continue; }  // no-op
    if (i + 1 >= options.size()) break;
    const std::size_t len = options[i + 1];
    if (len < 2 || i + len > options.size()) break;
    if (kind == wanted) return options.subspan(i, len);
    i += len;
  }
  return {};
}

constexpr std::uint8_t sack_kind = 5;
constexpr std::uint8_t timestamps_kind = 8, timestamps_len = 10;

}  // namespace

SackBlocks parse_sack(Bytes options) {
  SackBlocks out;
  const Bytes sack = find_option(options, sack_kind);
  for (std::size_t b = 2; b + 8 <= sack.size() && out.count < 4; b += 8)
    out.blocks[out.count++] = SackBlock{load32(sack, b), load32(sack, b + 4)};
  return out;
}

std::optional<Timestamps> parse_timestamps(Bytes options) {
  const Bytes ts = find_option(options, timestamps_kind);
  if (ts.size() != timestamps_len) return std::nullopt;
  return Timestamps{load32(ts, 2), load32(ts, 6)};
}

std::optional<std::size_t> timestamps_offset(Bytes options) {
  const Bytes ts = find_option(options, timestamps_kind);
  if (ts.size() != timestamps_len) return std::nullopt;
  return static_cast<std::size_t>(ts.data() - options.data());
}

}  // namespace nfqtrace::wire
