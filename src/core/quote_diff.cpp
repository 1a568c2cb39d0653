#include "nfqtrace/core/quote_diff.hpp"

#include <algorithm>

namespace nfqtrace::core {
namespace {

std::vector<std::uint8_t> bytes_of(const std::uint8_t* data, std::size_t size) {
  return std::vector<std::uint8_t>(data, data + size);
}

class Differ {
 public:
  explicit Differ(QuoteDiff& out) : out_(out) {}
  void number(Field f, std::uint64_t sent, std::uint64_t seen) {
    if (sent != seen) add(f, sent, seen);
  }
  void address(Field f, const wire::Address& sent, const wire::Address& seen) {
    if (sent != seen) add(f, sent, seen);
  }
  void bytes(Field f, std::vector<std::uint8_t> sent, std::vector<std::uint8_t> seen) {
    if (sent != seen) add(f, std::move(sent), std::move(seen));
  }

 private:
  void add(Field f, FieldValue sent, FieldValue seen) {
    out_.fields.add(f);
    out_.changes.push_back(FieldChange{f, std::move(sent), std::move(seen)});
  }
  QuoteDiff& out_;
};

}  // namespace

std::string_view to_string(Field field) {
  switch (field) {
    case Field::ip_dscp: return "ip.dscp";
    case Field::ip_ecn: return "ip.ecn";
    case Field::ip_id: return "ip.id";
    case Field::ip_df: return "ip.df";
    case Field::ip_len: return "ip.len";
    case Field::ip6_dscp: return "ip6.dscp";
    case Field::ip6_ecn: return "ip6.ecn";
    case Field::ip6_flow_label: return "ip6.flow_label";
    case Field::ip6_plen: return "ip6.plen";
    case Field::ip_src: return "ip.src";
    case Field::ip_dst: return "ip.dst";
    case Field::tcp_sport: return "tcp.sport";
    case Field::tcp_dport: return "tcp.dport";
    case Field::tcp_seq: return "tcp.seq";
    case Field::tcp_ack: return "tcp.ack";
    case Field::tcp_window: return "tcp.window";
    case Field::tcp_flags: return "tcp.flags";
    case Field::tcp_options: return "tcp.options";
    case Field::tcp_checksum: return "tcp.checksum";
    case Field::payload: return "payload";
  }
  return "unknown";
}

SentHeader sent_header_of(const wire::TcpPacket& p) {
  SentHeader s;
  const wire::Bytes ip = p.captured;
  if (p.family == wire::Family::v4) {
    s.traffic_class = ip[1];
    s.dont_fragment = (wire::load16(ip, 6) & 0x4000) != 0;
    s.ip_id = p.ip_id;
    s.ip_length_field = wire::load16(ip, 2);
  } else {
    s.traffic_class = static_cast<std::uint8_t>((wire::load16(ip, 0) >> 4) & 0xff);
    s.flow_label = p.flow_label;
    s.ip_length_field = wire::load16(ip, 4);
  }
  const wire::Bytes tcp = ip.subspan(p.ip_header_len);
  s.seq = p.seq;
  s.ack = p.ack;
  s.window = p.window;
  s.checksum = wire::load16(tcp, 16);
  s.flags = tcp[13];
  s.tcp_header_len = static_cast<std::uint8_t>(p.tcp_header_len);
  const wire::Bytes options = p.options();
  s.options_len = static_cast<std::uint8_t>(std::min(options.size(), s.options.size()));
  std::copy_n(options.begin(), s.options_len, s.options.begin());
  const wire::Bytes payload = p.payload();
  s.payload_len = static_cast<std::uint8_t>(std::min(payload.size(), s.payload.size()));
  std::copy_n(payload.begin(), s.payload_len, s.payload.begin());
  return s;
}

QuoteDiff compare(const SentHeader& sent, const FlowKey& flow, const wire::QuotedTcp& q) {
  QuoteDiff out;
  Differ d(out);
  const unsigned sent_dscp = sent.traffic_class >> 2, seen_dscp = q.traffic_class >> 2u;
  const unsigned sent_ecn = sent.traffic_class & 3u, seen_ecn = q.traffic_class & 3u;
  if (q.family == wire::Family::v4) {
    d.number(Field::ip_dscp, sent_dscp, seen_dscp);
    d.number(Field::ip_ecn, sent_ecn, seen_ecn);
    d.number(Field::ip_id, sent.ip_id, q.ip_id);
    d.number(Field::ip_df, sent.dont_fragment, q.dont_fragment);
    d.number(Field::ip_len, sent.ip_length_field, q.ip_length_field);
  } else {
    d.number(Field::ip6_dscp, sent_dscp, seen_dscp);
    d.number(Field::ip6_ecn, sent_ecn, seen_ecn);
    d.number(Field::ip6_flow_label, sent.flow_label, q.flow_label);
    d.number(Field::ip6_plen, sent.ip_length_field, q.ip_length_field);
  }
  d.address(Field::ip_src, flow.src, q.src);
  d.address(Field::ip_dst, flow.dst, q.dst);
  d.number(Field::tcp_sport, flow.sport, q.sport);
  d.number(Field::tcp_dport, flow.dport, q.dport);
  d.number(Field::tcp_seq, sent.seq, q.seq);

  // Beyond the first 8 bytes, only what the router quoted.
  const wire::Bytes tcp = q.tcp;
  if (tcp.size() >= 12) d.number(Field::tcp_ack, sent.ack, wire::load32(tcp, 8));
  if (tcp.size() >= 14) d.number(Field::tcp_flags, sent.flags, tcp[13]);
  if (tcp.size() >= 16) d.number(Field::tcp_window, sent.window, wire::load16(tcp, 14));
  if (tcp.size() >= 18) d.number(Field::tcp_checksum, sent.checksum, wire::load16(tcp, 16));
  if (tcp.size() < 13) return out;
  const std::size_t seen_header_len = (std::size_t{tcp[12]} >> 4) * 4;
  if (seen_header_len != sent.tcp_header_len) {
    // Options added or removed: the header length says so, whatever is quoted.
    const std::size_t begin = std::min<std::size_t>(tcp.size(), 20);
    const std::size_t end = std::min(tcp.size(), std::max<std::size_t>(seen_header_len, 20));
    d.bytes(Field::tcp_options, bytes_of(sent.options.data(), sent.options_len),
            bytes_of(tcp.data() + begin, end - begin));
    return out;  // the payload would be compared at another offset: not the same bytes
  }
  // Options and payload: as far as both the quote and the snapshot reach.
  if (tcp.size() > 20) {
    const std::size_t n = std::min<std::size_t>(tcp.size() - 20, sent.options_len);
    d.bytes(Field::tcp_options, bytes_of(sent.options.data(), n), bytes_of(tcp.data() + 20, n));
  }
  if (tcp.size() > seen_header_len) {
    const std::size_t n = std::min<std::size_t>(tcp.size() - seen_header_len, sent.payload_len);
    d.bytes(Field::payload, bytes_of(sent.payload.data(), n),
            bytes_of(tcp.data() + seen_header_len, n));
  }
  return out;
}

}  // namespace nfqtrace::core
