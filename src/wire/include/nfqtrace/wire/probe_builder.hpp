// Building probe packets from a packet of the traced connection, and lowering
// the TTL of a packet in place. Addresses, ports, protocol and IPv6 flow
// label are copied unchanged so per-flow load balancers hash probes like the
// connection itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::wire {

inline constexpr std::size_t max_probe_size = 60 + 60 + 256;

struct ProbeFields {
  std::uint32_t seq = 0;    // sequence number of the first payload byte
  Bytes payload;            // bytes the connection already sent at `seq`
  std::uint8_t ttl = 1;     // TTL / hop limit
  std::uint16_t ip_id = 0;  // IPv4 only
  bool clear_ecn = false;   // Not-ECT instead of the template's ECN codepoint
  // In place of the template's TSval, if it has the timestamps option: a
  // copy of an older packet must not be older than what the peer has seen
  // (RFC 7323 5.3: it would discard it, PAWS).
  std::optional<std::uint32_t> tsval;
};

// Writes a complete IP+TCP packet with the template's headers (the TCP
// options stay as they are, but for `tsval`), the given fields and
// correct checksums into `out`. Returns its size, or 0 when the template
// cannot serve (an IPv6 routing header) or `out` is too small.
std::size_t build_probe(const TcpPacket& tmpl, const ProbeFields& fields, MutableBytes out);

// Sets the TTL / hop limit of a whole packet in place, fixing the IPv4
// header checksum incrementally (the TCP checksum does not cover the TTL).
bool set_ttl(MutableBytes packet, std::uint8_t ttl);

// Computes the TCP checksum of a whole IPv4/IPv6 packet from scratch. A
// packet handed back to the queue with a verdict counts as fully
// checksummed, so one whose checksum the kernel had left for offload
// (NFQA_SKB_CSUMNOTREADY: the field holds only the pseudo-header sum) must be
// completed first. False when the bytes are not a whole TCP packet.
bool complete_tcp_checksum(MutableBytes packet);

}  // namespace nfqtrace::wire
