#include "nfqtrace/wire/probe_builder.hpp"

#include <algorithm>

#include "nfqtrace/wire/checksum.hpp"

namespace nfqtrace::wire {

std::size_t build_probe(const TcpPacket& tmpl, const ProbeFields& fields, MutableBytes out) {
  if (tmpl.has_routing_header) return 0;
  const std::size_t ip_len = tmpl.ip_header_len;
  const std::size_t tcp_len = tmpl.tcp_header_len;
  const std::size_t total = ip_len + tcp_len + fields.payload.size();
  if (total > out.size() || total > 0xffff) return 0;

  Bytes headers = tmpl.headers();
  std::copy(headers.begin(), headers.end(), out.begin());
  std::copy(fields.payload.begin(), fields.payload.end(), out.begin() + static_cast<std::ptrdiff_t>(ip_len + tcp_len));

  if (tmpl.family == Family::v4) {
    store16(out, 2, static_cast<std::uint16_t>(total));
    store16(out, 4, fields.ip_id);
    store16(out, 6, static_cast<std::uint16_t>(load16(out, 6) & 0x4000));  // keep DF only
    out[8] = fields.ttl;
    if (fields.clear_ecn) out[1] = static_cast<std::uint8_t>(out[1] & 0xfc);
    store16(out, 10, 0);
    store16(out, 10, checksum_fold(checksum_add(0, out.first(ip_len))));
  } else {
    store16(out, 4, static_cast<std::uint16_t>(total - 40));
    out[7] = fields.ttl;
    // The traffic class spans bytes 0-1; its ECN bits are bits 4-5 of byte 1.
    if (fields.clear_ecn) out[1] = static_cast<std::uint8_t>(out[1] & 0xcf);
  }

  MutableBytes tcp = out.subspan(ip_len, tcp_len + fields.payload.size());
  store32(tcp, 4, fields.seq);
  if (fields.tsval) {
    if (auto at = timestamps_offset(tmpl.options())) store32(tcp, 20 + *at + 2, *fields.tsval);
  }
  // A probe is a plain acknowledgement with data: never SYN, FIN, RST or URG.
  tcp[13] = static_cast<std::uint8_t>(tcp[13] & (tcp_flag::ack | tcp_flag::psh));
  store16(tcp, 18, 0);  // urgent pointer
  store16(tcp, 16, 0);
  std::uint32_t sum = pseudo_header_sum(tmpl.src, tmpl.dst, ip_proto_tcp,
                                        static_cast<std::uint32_t>(tcp.size()));
  store16(tcp, 16, checksum_fold(checksum_add(sum, tcp)));
  return total;
}

bool set_ttl(MutableBytes packet, std::uint8_t ttl) {
  if (packet.empty()) return false;
  if ((packet[0] >> 4) == 4) {
    if (packet.size() < 20) return false;
    const std::uint16_t old_word = load16(packet, 8);
    packet[8] = ttl;
    store16(packet, 10, checksum_update16(load16(packet, 10), old_word, load16(packet, 8)));
    return true;
  }
  if ((packet[0] >> 4) == 6) {
    if (packet.size() < 40) return false;
    packet[7] = ttl;
    return true;
  }
  return false;
}

bool complete_tcp_checksum(MutableBytes packet) {
  auto p = parse_tcp_packet(packet, static_cast<std::uint32_t>(packet.size()));
  if (!p || p->captured.size() != packet.size() || p->has_routing_header) return false;
  MutableBytes tcp = packet.subspan(p->ip_header_len);
  store16(tcp, 16, 0);
  const std::uint32_t sum =
      pseudo_header_sum(p->src, p->dst, ip_proto_tcp, static_cast<std::uint32_t>(tcp.size()));
  store16(tcp, 16, checksum_fold(checksum_add(sum, tcp)));
  return true;
}

}  // namespace nfqtrace::wire
