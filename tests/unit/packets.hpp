// Hand-built packets for tests: written byte by byte here, independently of
// the library's own builder, so a test can catch the builder's mistakes.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nfqtrace/wire/address.hpp"

namespace testpkt {

using Buf = std::vector<std::uint8_t>;

inline nfqtrace::wire::Address addr(const std::string& text) {
  return *nfqtrace::wire::Address::parse(text);
}

inline void put16(Buf& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(Buf& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// Plain RFC 1071 sum, written out separately from the library's.
inline std::uint16_t inet_sum(const Buf& data, std::uint32_t initial = 0) {
  std::uint64_t sum = initial;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    std::uint32_t word = std::uint32_t{data[i]} << 8;
    if (i + 1 < data.size()) word |= data[i + 1];
    sum += word;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

struct Tcp {
  std::string src = "10.0.0.2", dst = "10.0.9.2";
  std::uint16_t sport = 41234, dport = 443;
  std::uint32_t seq = 1000, ack = 5000;
  std::uint8_t flags = 0x18;  // PSH|ACK
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;  // IPv4 TOS or IPv6 traffic class: DSCP << 2 | ECN
  std::uint16_t ip_id = 0x1234;
  std::uint32_t flow_label = 0xabcde;
  Buf options;  // multiple of 4
  Buf payload;
};

// The TCP segment (header + payload) with a correct checksum.
inline Buf tcp_segment(const Tcp& t) {
  const std::size_t hl = 20 + t.options.size();
  Buf seg(hl + t.payload.size(), 0);
  put16(seg, 0, t.sport);
  put16(seg, 2, t.dport);
  put32(seg, 4, t.seq);
  put32(seg, 8, t.ack);
  seg[12] = static_cast<std::uint8_t>((hl / 4) << 4);
  seg[13] = t.flags;
  put16(seg, 14, 502);
  std::copy(t.options.begin(), t.options.end(), seg.begin() + 20);
  std::copy(t.payload.begin(), t.payload.end(), seg.begin() + static_cast<std::ptrdiff_t>(hl));
  auto s = addr(t.src), d = addr(t.dst);
  Buf pseudo;
  pseudo.insert(pseudo.end(), s.bytes.begin(), s.bytes.begin() + static_cast<std::ptrdiff_t>(s.size()));
  pseudo.insert(pseudo.end(), d.bytes.begin(), d.bytes.begin() + static_cast<std::ptrdiff_t>(d.size()));
  pseudo.push_back(0);
  pseudo.push_back(6);
  pseudo.push_back(static_cast<std::uint8_t>(seg.size() >> 8));
  pseudo.push_back(static_cast<std::uint8_t>(seg.size()));
  pseudo.insert(pseudo.end(), seg.begin(), seg.end());
  put16(seg, 16, inet_sum(pseudo));
  return seg;
}

inline bool is_v6(const Tcp& t) { return t.src.find(':') != std::string::npos; }

// A whole IPv4 or IPv6 packet (family from the addresses).
inline Buf ip_packet(const Tcp& t) {
  Buf seg = tcp_segment(t);
  auto s = addr(t.src), d = addr(t.dst);
  Buf p;
  if (!is_v6(t)) {
    p.assign(20, 0);
    p[0] = 0x45;
    p[1] = t.tos;
    put16(p, 2, static_cast<std::uint16_t>(20 + seg.size()));
    put16(p, 4, t.ip_id);
    put16(p, 6, 0x4000);
    p[8] = t.ttl;
    p[9] = 6;
    std::copy_n(s.bytes.begin(), 4, p.begin() + 12);
    std::copy_n(d.bytes.begin(), 4, p.begin() + 16);
    put16(p, 10, inet_sum(p));
  } else {
    p.assign(40, 0);
    put32(p, 0, 0x60000000u | std::uint32_t{t.tos} << 20 | t.flow_label);
    put16(p, 4, static_cast<std::uint16_t>(seg.size()));
    p[6] = 6;
    p[7] = t.ttl;
    std::copy_n(s.bytes.begin(), 16, p.begin() + 8);
    std::copy_n(d.bytes.begin(), 16, p.begin() + 24);
  }
  p.insert(p.end(), seg.begin(), seg.end());
  return p;
}

// An ICMP time-exceeded (or unreachable) from `router` to the packet's
// source, quoting `quote_tcp_bytes` bytes of the TCP header (8 as RFC 792;
// more as RFC 1812). IPv4: the whole datagram with IP header. IPv6: the
// ICMPv6 message only (what a raw ICMPv6 socket reads).
inline Buf icmp_error(const Buf& probe, const std::string& router, std::size_t quote_tcp_bytes = 8,
                      bool unreachable = false, std::uint8_t arrive_ttl = 1) {
  const bool v6 = (probe[0] >> 4) == 6;
  const std::size_t ip_len = v6 ? 40 : 20;
  Buf quoted(probe.begin(), probe.begin() + static_cast<std::ptrdiff_t>(std::min(probe.size(), ip_len + quote_tcp_bytes)));
  if (v6) quoted[7] = arrive_ttl; else quoted[8] = arrive_ttl;
  Buf icmp(8, 0);
  icmp[0] = v6 ? (unreachable ? 1 : 3) : (unreachable ? 3 : 11);
  icmp[1] = unreachable ? 1 : 0;
  icmp.insert(icmp.end(), quoted.begin(), quoted.end());
  if (v6) return icmp;  // checksum: the kernel checks it before we read
  put16(icmp, 2, inet_sum(icmp));
  Buf ip(20, 0);
  ip[0] = 0x45;
  put16(ip, 2, static_cast<std::uint16_t>(20 + icmp.size()));
  ip[8] = 62;
  ip[9] = 1;
  auto r = addr(router);
  std::copy_n(r.bytes.begin(), 4, ip.begin() + 12);
  std::copy(probe.begin() + 12, probe.begin() + 16, ip.begin() + 16);
  put16(ip, 10, inet_sum(ip));
  ip.insert(ip.end(), icmp.begin(), icmp.end());
  return ip;
}

// An MPLS label stack entry as RFC 4950 writes it.
struct Label {
  std::uint32_t label;
  std::uint8_t tc, s, ttl;
};

// `error` (from icmp_error, with at least 128 bytes of quote, padded here if
// shorter) with an RFC 4884 extension structure holding one RFC 4950 MPLS
// label stack object: the original datagram's length in the ICMP header,
// the extension's checksum, and for IPv4 the lengths and checksums fixed.
inline Buf with_mpls(Buf error, const std::vector<Label>& stack) {
  const bool v6 = (error[0] >> 4) != 4;  // an IPv6 error is the bare ICMPv6 message
  const std::size_t icmp_at = v6 ? 0 : 20;
  Buf quote(error.begin() + static_cast<std::ptrdiff_t>(icmp_at + 8), error.end());
  quote.resize(std::max<std::size_t>(quote.size(), 128), 0);
  quote.resize((quote.size() + 7) / 8 * 8, 0);  // whole 64-bit words (32 would do for IPv4)
  Buf ext = {0x20, 0, 0, 0};                    // version 2, checksum below
  Buf object(4, 0);
  put16(object, 0, static_cast<std::uint16_t>(4 + 4 * stack.size()));
  object[2] = 1;  // class: MPLS label stack
  object[3] = 1;  // c-type: incoming label stack
  for (const Label& l : stack) {
    Buf entry(4, 0);
    put32(entry, 0, l.label << 12 | std::uint32_t{l.tc} << 9 | std::uint32_t{l.s} << 8 | l.ttl);
    object.insert(object.end(), entry.begin(), entry.end());
  }
  ext.insert(ext.end(), object.begin(), object.end());
  put16(ext, 2, inet_sum(ext));
  Buf icmp(error.begin() + static_cast<std::ptrdiff_t>(icmp_at),
           error.begin() + static_cast<std::ptrdiff_t>(icmp_at + 8));
  if (v6) icmp[4] = static_cast<std::uint8_t>(quote.size() / 8);
  else icmp[5] = static_cast<std::uint8_t>(quote.size() / 4);
  icmp.insert(icmp.end(), quote.begin(), quote.end());
  icmp.insert(icmp.end(), ext.begin(), ext.end());
  if (v6) return icmp;
  put16(icmp, 2, 0);
  put16(icmp, 2, inet_sum(icmp));
  Buf ip(error.begin(), error.begin() + 20);
  put16(ip, 2, static_cast<std::uint16_t>(20 + icmp.size()));
  put16(ip, 10, 0);
  put16(ip, 10, inet_sum(ip));
  ip.insert(ip.end(), icmp.begin(), icmp.end());
  return ip;
}

// TCP options holding one SACK block [left, right), padded with NOPs.
inline Buf sack_option(std::uint32_t left, std::uint32_t right) {
  Buf o = {1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  put32(o, 4, left);
  put32(o, 8, right);
  return o;
}

}  // namespace testpkt
