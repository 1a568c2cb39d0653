#include "ip_header.hpp"

namespace nfqtrace::wire::detail {
namespace {

constexpr int max_extension_headers = 8;

Parsed<IpHeader> parse_v4(Bytes b) {
  if (b.size() < 20) return ParseError::truncated;
  IpHeader h;
  h.family = Family::v4;
  const std::uint16_t ihl = static_cast<std::uint16_t>((b[0] & 0x0f) * 4);
  if (ihl < 20) return ParseError::bad_header_length;
  if (b.size() < ihl) return ParseError::truncated;
  h.header_len = ihl;
  h.traffic_class = b[1];
  h.length_field = load16(b, 2);
  h.ip_id = load16(b, 4);
  h.dont_fragment = (load16(b, 6) & 0x4000) != 0;
  h.later_fragment = (load16(b, 6) & 0x1fff) != 0;
  h.ttl = b[8];
  h.protocol = b[9];
  h.src = Address::v4(b.subspan(12, 4));
  h.dst = Address::v4(b.subspan(16, 4));
  return h;
}

Parsed<IpHeader> parse_v6(Bytes b) {
  if (b.size() < 40) return ParseError::truncated;
  IpHeader h;
  h.family = Family::v6;
  h.flow_label = load32(b, 0) & 0xfffff;
  h.traffic_class = static_cast<std::uint8_t>((load16(b, 0) >> 4) & 0xff);
  h.length_field = load16(b, 4);
  h.ttl = b[7];
  h.src = Address::v6(b.subspan(8, 16));
  h.dst = Address::v6(b.subspan(24, 16));
  std::uint8_t next = b[6];
  std::size_t at = 40;
  for (int n = 0;; ++n) {
    switch (next) {
      case 0:    // hop-by-hop options
      case 43:   // routing
      case 60:   // destination options
      case 135:  // mobility
      case 44:   // fragment
      case 51: { // authentication header
        if (n == max_extension_headers) return ParseError::extension_chain;
        if (b.size() < at + 8) return ParseError::truncated;
        std::size_t len = next == 44   ? 8
                          : next == 51 ? (std::size_t{b[at + 1]} + 2) * 4
                                       : (std::size_t{b[at + 1]} + 1) * 8;
        if (next == 43) h.routing_header = true;
        if (next == 44 && (load16(b, at + 2) & 0xfff8) != 0) h.later_fragment = true;
        next = b[at];
        at += len;
        if (b.size() < at) return ParseError::truncated;
        continue;
      }
      default:
        break;
    }
    break;
  }
  h.header_len = static_cast<std::uint16_t>(at);
  h.protocol = next;
  return h;
}

}  // namespace

Parsed<IpHeader> parse_ip_header(Bytes b) {
  if (b.empty()) return ParseError::truncated;
  switch (b[0] >> 4) {
    case 4: return parse_v4(b);
    case 6: return parse_v6(b);
    default: return ParseError::bad_version;
  }
}

}  // namespace nfqtrace::wire::detail
