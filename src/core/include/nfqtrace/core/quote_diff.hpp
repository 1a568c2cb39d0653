// What the path did to a probe: each field of the quote in an ICMP error
// compared with the probe as it was sent (tracebox's method, on the live
// connection's own packets). A router quotes the packet as it arrived, so a
// difference was made before that router. Only what the quote contains is
// compared: an RFC 792 router quotes 8 bytes of TCP (ports and sequence
// number), most quote the whole probe.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/wire/icmp_error.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::core {

// The fields compared, named `layer.field` in the results.
enum class Field : std::uint8_t {
  ip_dscp, ip_ecn, ip_id, ip_df, ip_len,       // IPv4
  ip6_dscp, ip6_ecn, ip6_flow_label, ip6_plen,  // IPv6
  ip_src, ip_dst,                               // both
  tcp_sport, tcp_dport, tcp_seq, tcp_ack, tcp_window, tcp_flags, tcp_options, tcp_checksum,
  payload,
};
inline constexpr std::size_t field_count = 20;
std::string_view to_string(Field field);  // "ip.dscp", "tcp.seq", ...

// A set of fields, as bits.
class FieldSet {
 public:
  void add(Field f) { bits_ |= 1u << static_cast<unsigned>(f); }
  bool contains(Field f) const { return (bits_ >> static_cast<unsigned>(f)) & 1u; }
  bool empty() const { return bits_ == 0; }
  std::uint32_t bits() const { return bits_; }
  bool operator==(const FieldSet&) const = default;

 private:
  std::uint32_t bits_ = 0;
};

// A field's value: a number (codepoints, lengths, ports, sequence numbers,
// flags...), an address, or bytes (TCP options, payload).
using FieldValue = std::variant<std::uint64_t, wire::Address, std::vector<std::uint8_t>>;

// The headers of a probe as it left: what a quote is compared with. The
// addresses and ports are the flow's.
struct SentHeader {
  std::uint8_t traffic_class = 0;  // DSCP << 2 | ECN
  bool dont_fragment = false;
  std::uint16_t ip_id = 0;
  std::uint32_t flow_label = 0;
  std::uint16_t ip_length_field = 0;
  std::uint32_t seq = 0, ack = 0;
  std::uint16_t window = 0, checksum = 0;
  std::uint8_t flags = 0;
  std::uint8_t tcp_header_len = 20;
  std::uint8_t options_len = 0, payload_len = 0;
  std::array<std::uint8_t, 40> options{};
  std::array<std::uint8_t, 16> payload{};  // its first bytes
};

// The sent headers of a whole packet (a probe as built, or a mangled original).
SentHeader sent_header_of(const wire::TcpPacket& packet);

// The fields that differ, each with the value sent and the value seen.
struct FieldChange {
  Field field;
  FieldValue sent, seen;
};
struct QuoteDiff {
  FieldSet fields;
  std::vector<FieldChange> changes;  // in Field order
};

// The quote against the probe of `flow` as sent.
QuoteDiff compare(const SentHeader& sent, const FlowKey& flow, const wire::QuotedTcp& quote);

}  // namespace nfqtrace::core
