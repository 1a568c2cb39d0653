#include "nfqtrace/wire/icmp_error.hpp"

#include <algorithm>

#include "ip_header.hpp"
#include "nfqtrace/wire/checksum.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::wire {
namespace {

// Reads the quoted packet. The quote is usually cut short: only the IP header
// (with its extension headers) and the first 8 bytes of TCP must be there.
Parsed<QuotedTcp> parse_quote(Bytes quote, Family expected) {
  auto ip = detail::parse_ip_header(quote);
  if (!ip) return ip.error();
  if (ip->family != expected) return ParseError::bad_version;
  if (ip->protocol != ip_proto_tcp) return ParseError::not_tcp;
  if (ip->later_fragment) return ParseError::not_first_fragment;
  const std::size_t t = ip->header_len;
  if (quote.size() < t + 8) return ParseError::truncated;

  QuotedTcp q;
  q.family = ip->family;
  q.src = ip->src;
  q.dst = ip->dst;
  q.ttl = ip->ttl;
  q.traffic_class = ip->traffic_class;
  q.dont_fragment = ip->dont_fragment;
  q.ip_id = ip->ip_id;
  q.flow_label = ip->flow_label;
  q.ip_length_field = static_cast<std::uint16_t>(ip->length_field);
  const std::uint32_t ext_len = ip->family == Family::v6 ? ip->header_len - 40u : 0u;
  if (ip->family == Family::v4) {
    if (ip->length_field < ip->header_len) return ParseError::bad_total_length;
    q.ip_payload_len = ip->length_field - ip->header_len;
  } else {
    if (ip->length_field < ext_len) return ParseError::bad_total_length;
    q.ip_payload_len = ip->length_field - ext_len;
  }
  q.sport = load16(quote, t);
  q.dport = load16(quote, t + 2);
  q.seq = load32(quote, t + 4);
  if (quote.size() >= t + 12) q.ack = load32(quote, t + 8);
  q.quoted_tcp_bytes = static_cast<std::uint16_t>(std::min<std::size_t>(quote.size() - t, 0xffff));
  q.tcp = quote.subspan(t, q.quoted_tcp_bytes);
  return q;
}

// RFC 4884: a non-zero length field gives the padded length of the original
// datagram (in `unit` bytes); an extension structure may follow it.
struct QuoteSplit {
  Bytes quote;
  Bytes extensions;
};
// A message whose copy was `cut` short may have lost its extensions, not
// its quote.
Parsed<QuoteSplit> split_rfc4884(Bytes body, std::size_t length_units, std::size_t unit,
                                 bool cut) {
  if (length_units == 0) return QuoteSplit{body, {}};
  const std::size_t quote_len = length_units * unit;
  if (quote_len < 128) return ParseError::bad_extension;
  if (cut) return QuoteSplit{body.first(std::min(quote_len, body.size())), {}};
  if (quote_len > body.size()) return ParseError::bad_extension;
  Bytes ext = body.subspan(quote_len);
  // Extension header: version 2, reserved, checksum; at least one object header.
  if (ext.size() < 8 || (ext[0] >> 4) != 2) return ParseError::bad_extension;
  return QuoteSplit{body.first(quote_len), ext};
}

Parsed<IcmpError> parse_icmp4_copy(Bytes datagram, bool cut);
Parsed<IcmpError> parse_icmp6_copy(Bytes message, const Address& from, const Address& to,
                                   std::uint8_t hop_limit, bool cut);

}  // namespace

Parsed<IcmpError> parse_icmp4(Bytes datagram) { return parse_icmp4_copy(datagram, false); }

Parsed<IcmpError> parse_icmp6(Bytes message, const Address& from, const Address& to,
                              std::uint8_t hop_limit) {
  return parse_icmp6_copy(message, from, to, hop_limit, false);
}

Parsed<IcmpError> parse_icmp_packet(Bytes packet, std::uint32_t wire_len) {
  auto ip = detail::parse_ip_header(packet);
  if (!ip) return ip.error();
  const bool cut = wire_len > packet.size();
  if (ip->family == Family::v4) {
    if (ip->protocol != 1) return ParseError::not_icmp_error;
    return parse_icmp4_copy(packet, cut);
  }
  if (ip->protocol != 58 || ip->later_fragment) return ParseError::not_icmp_error;
  Bytes message = packet.subspan(ip->header_len);
  // The IPv6 payload length covers the extension headers and the message.
  const std::size_t ext_len = ip->header_len - 40u;
  if (ip->length_field >= ext_len && ip->length_field - ext_len < message.size())
    message = message.first(ip->length_field - ext_len);
  return parse_icmp6_copy(message, ip->src, ip->dst, ip->ttl, cut);
}

namespace {

Parsed<IcmpError> parse_icmp4_copy(Bytes datagram, bool cut) {
  auto outer = detail::parse_ip_header(datagram);
  if (!outer) return outer.error();
  if (outer->family != Family::v4) return ParseError::bad_version;
  if (outer->protocol != 1) return ParseError::not_icmp_error;
  Bytes icmp = datagram.subspan(outer->header_len);
  if (outer->length_field >= outer->header_len && outer->length_field < datagram.size())
    icmp = datagram.subspan(outer->header_len, outer->length_field - outer->header_len);
  if (icmp.size() < 8) return ParseError::truncated;

  IcmpError e;
  e.family = Family::v4;
  e.from = outer->src;
  e.to = outer->dst;
  e.reply_ttl = outer->ttl;
  e.type = icmp[0];
  e.code = icmp[1];
  if (e.type == 11 && e.code == 0) {
    e.kind = IcmpKind::time_exceeded;
  } else if (e.type == 3) {
    e.kind = IcmpKind::unreachable;
  } else {
    return ParseError::not_icmp_error;
  }
  // Byte 5 is the RFC 4884 length in 32-bit words (not for "fragmentation
  // needed", whose bytes 6-7 are the next-hop MTU).
  const std::size_t units = (e.type == 3 && e.code == 4) ? 0 : icmp[5];
  auto split = split_rfc4884(icmp.subspan(8), units, 4, cut);
  if (!split) return split.error();
  auto quote = parse_quote(split->quote, Family::v4);
  if (!quote) return quote.error();
  e.quote = *quote;
  e.extensions = split->extensions;
  return e;
}

Parsed<IcmpError> parse_icmp6_copy(Bytes message, const Address& from, const Address& to,
                                   std::uint8_t hop_limit, bool cut) {
  if (from.family != Family::v6 || to.family != Family::v6) return ParseError::bad_version;
  if (message.size() < 8) return ParseError::truncated;
  IcmpError e;
  e.family = Family::v6;
  e.from = from;
  e.to = to;
  e.reply_ttl = hop_limit;
  e.type = message[0];
  e.code = message[1];
  if (e.type == 3 && e.code == 0) {
    e.kind = IcmpKind::time_exceeded;
  } else if (e.type == 1) {
    e.kind = IcmpKind::unreachable;
  } else {
    return ParseError::not_icmp_error;
  }
  // Byte 4 is the RFC 4884 length in 64-bit words.
  auto split = split_rfc4884(message.subspan(8), message[4], 8, cut);
  if (!split) return split.error();
  auto quote = parse_quote(split->quote, Family::v6);
  if (!quote) return quote.error();
  e.quote = *quote;
  e.extensions = split->extensions;
  return e;
}

}  // namespace

Parsed<MplsStack> parse_mpls_extension(Bytes ext) {
  // Extension header: version 2, reserved, checksum (0: not computed).
  if (ext.size() < 4 || (ext[0] >> 4) != 2) return ParseError::bad_extension;
  if (load16(ext, 2) != 0 && checksum_fold(checksum_add(0, ext)) != 0)
    return ParseError::bad_extension;
  MplsStack stack;
  for (std::size_t at = 4; at < ext.size();) {
    // Object header: length (header included), class number, c-type.
    if (ext.size() < at + 4) return ParseError::bad_extension;
    const std::size_t length = load16(ext, at);
    if (length < 4 || ext.size() < at + length) return ParseError::bad_extension;
    const std::uint8_t class_num = ext[at + 2], c_type = ext[at + 3];
    if (class_num == 1 && c_type == 1) {  // MPLS label stack
      if ((length - 4) % 4 != 0) return ParseError::bad_extension;
      for (std::size_t e = at + 4; e < at + length && stack.count < max_mpls_entries; e += 4) {
        const std::uint32_t word = load32(ext, e);
        stack.entries[stack.count++] = MplsEntry{word >> 12, static_cast<std::uint8_t>((word >> 9) & 7),
                                                 ((word >> 8) & 1) != 0,
                                                 static_cast<std::uint8_t>(word & 0xff)};
      }
    }
    at += length;
  }
  return stack;
}

}  // namespace nfqtrace::wire
