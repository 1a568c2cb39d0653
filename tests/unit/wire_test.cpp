#include <gtest/gtest.h>

#include <algorithm>

#include "nfqtrace/wire/checksum.hpp"
#include "nfqtrace/wire/icmp_error.hpp"
#include "nfqtrace/wire/probe_builder.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"
#include "packets.hpp"

using namespace nfqtrace::wire;
using testpkt::Buf;

namespace {

Parsed<TcpPacket> parse(const Buf& b) {
  return parse_tcp_packet(Bytes(b), static_cast<std::uint32_t>(b.size()));
}

testpkt::Tcp data_segment(bool v6) {
  testpkt::Tcp t;
  if (v6) {
    t.src = "2001:db8::2";
    t.dst = "2001:db8:9::2";
  }
  t.options = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};  // timestamps
  for (int i = 0; i < 100; ++i) t.payload.push_back(static_cast<std::uint8_t>('a' + i % 26));
  return t;
}

// The probe build_probe makes from `tmpl` (empty when it makes none).
Buf probe_from(const TcpPacket& tmpl, const ProbeFields& f) {
  Buf out(max_probe_size);
  out.resize(build_probe(tmpl, f, MutableBytes(out)));
  return out;
}

// The checksum of a complete IP packet's TCP segment verifies.
bool tcp_checksum_ok(const Buf& pkt) {
  const bool v6 = (pkt[0] >> 4) == 6;
  const std::size_t ip_len = v6 ? 40 : 20;
  Buf seg(pkt.begin() + static_cast<std::ptrdiff_t>(ip_len), pkt.end());
  Buf pseudo;
  const std::size_t a = v6 ? 8 : 12, n = v6 ? 32 : 8;
  pseudo.insert(pseudo.end(), pkt.begin() + static_cast<std::ptrdiff_t>(a), pkt.begin() + static_cast<std::ptrdiff_t>(a + n));
  pseudo.push_back(0);
  pseudo.push_back(6);
  pseudo.push_back(static_cast<std::uint8_t>(seg.size() >> 8));
  pseudo.push_back(static_cast<std::uint8_t>(seg.size()));
  pseudo.insert(pseudo.end(), seg.begin(), seg.end());
  return testpkt::inet_sum(pseudo) == 0;
}

}  // namespace

TEST(TcpPacket, ParsesIpv4Fields) {
  Buf b = testpkt::ip_packet(data_segment(false));
  auto p = parse(b);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->family, Family::v4);
  EXPECT_EQ(p->src.to_string(), "10.0.0.2");
  EXPECT_EQ(p->dst.to_string(), "10.0.9.2");
  EXPECT_EQ(p->sport, 41234);
  EXPECT_EQ(p->dport, 443);
  EXPECT_EQ(p->seq, 1000u);
  EXPECT_EQ(p->ack, 5000u);
  EXPECT_EQ(p->ttl, 64);
  EXPECT_EQ(p->ip_id, 0x1234);
  EXPECT_EQ(p->tcp_header_len, 32);
  EXPECT_EQ(p->payload_len, 100u);
  EXPECT_EQ(p->payload().size(), 100u);
  EXPECT_EQ(p->payload()[0], 'a');
}

TEST(TcpPacket, ParsesIpv6FieldsAndFlowLabel) {
  Buf b = testpkt::ip_packet(data_segment(true));
  auto p = parse(b);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->family, Family::v6);
  EXPECT_EQ(p->src.to_string(), "2001:db8::2");
  EXPECT_EQ(p->flow_label, 0xabcdeu);
  EXPECT_EQ(p->ip_header_len, 40);
  EXPECT_EQ(p->payload_len, 100u);
}

TEST(TcpPacket, TruncatedCopyKeepsTrueLength) {
  Buf b = testpkt::ip_packet(data_segment(false));
  const auto wire_len = static_cast<std::uint32_t>(b.size());
  b.resize(20 + 32 + 10);  // the queue copied headers and 10 payload bytes
  auto p = parse_tcp_packet(Bytes(b), wire_len);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload_len, 100u);
  EXPECT_EQ(p->payload().size(), 10u);
}

TEST(TcpPacket, RejectsCutHeadersAndLyingLengths) {
  Buf b = testpkt::ip_packet(data_segment(false));
  Buf cut(b.begin(), b.begin() + 30);
  EXPECT_EQ(parse_tcp_packet(Bytes(cut), 152).error(), ParseError::truncated);

  Buf longer = b;
  testpkt::put16(longer, 2, 2000);  // claims more than the packet has
  EXPECT_EQ(parse(longer).error(), ParseError::bad_total_length);

  Buf bad_ihl = b;
  bad_ihl[0] = 0x43;
  EXPECT_EQ(parse(bad_ihl).error(), ParseError::bad_header_length);

  Buf bad_off = b;
  bad_off[20 + 12] = 0x40;  // data offset 16 bytes
  EXPECT_EQ(parse(bad_off).error(), ParseError::bad_header_length);

  Buf udp = b;
  udp[9] = 17;
  EXPECT_EQ(parse(udp).error(), ParseError::not_tcp);

  Buf v5 = b;
  v5[0] = 0x55;
  EXPECT_EQ(parse(v5).error(), ParseError::bad_version);

  EXPECT_EQ(parse(Buf{}).error(), ParseError::truncated);
}

TEST(TcpPacket, WalksIpv6ExtensionHeadersWithinBounds) {
  Buf b = testpkt::ip_packet(data_segment(true));
  // Insert a destination-options header (8 bytes) before TCP.
  Buf ext = {6, 0, 1, 4, 0, 0, 0, 0};
  b.insert(b.begin() + 40, ext.begin(), ext.end());
  b[6] = 60;
  testpkt::put16(b, 4, static_cast<std::uint16_t>(b.size() - 40));
  auto p = parse(b);
  ASSERT_TRUE(p) << to_string(p.error());
  EXPECT_EQ(p->ip_header_len, 48);
  EXPECT_EQ(p->payload_len, 100u);

  // A chain of more extension headers than any real packet has is refused.
  Buf chain(40, 0);
  chain[0] = 0x60;
  chain[6] = 60;
  for (int i = 0; i < 20; ++i) {
    Buf e = {60, 0, 0, 0, 0, 0, 0, 0};
    chain.insert(chain.end(), e.begin(), e.end());
  }
  testpkt::put16(chain, 4, static_cast<std::uint16_t>(chain.size() - 40));
  EXPECT_EQ(parse(chain).error(), ParseError::extension_chain);
}

TEST(Sack, ReadsBlocksAndStopsAtMalformedOptions) {
  Buf o = testpkt::sack_option(100, 200);
  auto s = parse_sack(Bytes(o));
  ASSERT_EQ(s.count, 1);
  EXPECT_EQ(s.blocks[0].left, 100u);
  EXPECT_EQ(s.blocks[0].right, 200u);

  Buf liar = {5, 60, 0, 0};  // length runs past the options
  EXPECT_EQ(parse_sack(Bytes(liar)).count, 0);
  Buf zero_len = {5, 0, 0, 0};
  EXPECT_EQ(parse_sack(Bytes(zero_len)).count, 0);
}

TEST(Timestamps, ReadsValueAndEchoAfterOtherOptions) {
  // SACK first, then the timestamps: the walk goes past the one to the other.
  Buf o = testpkt::sack_option(100, 200);
  o.insert(o.end(), {1, 1, 8, 10, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe});
  auto ts = parse_timestamps(Bytes(o));
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->val, 256u);
  EXPECT_EQ(ts->ecr, 0xfffffffeu);
  EXPECT_EQ(timestamps_offset(Bytes(o)), o.size() - 10);
  EXPECT_EQ(parse_sack(Bytes(o)).count, 1);

  Buf wrong_len = {8, 8, 0, 0, 0, 1, 0, 0};  // a timestamps option is 10 bytes
  EXPECT_FALSE(parse_timestamps(Bytes(wrong_len)));
  EXPECT_FALSE(timestamps_offset(Bytes(wrong_len)));
  Buf past_end = {0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};  // after the end-of-options
  EXPECT_FALSE(parse_timestamps(Bytes(past_end)));
  EXPECT_FALSE(parse_timestamps(Bytes()));
}

class ProbeBuilder : public ::testing::TestWithParam<bool> {};

TEST_P(ProbeBuilder, CopiesFlowFieldsAndSetsIdentity) {
  const bool v6 = GetParam();
  auto t = data_segment(v6);
  Buf orig = testpkt::ip_packet(t);
  auto p = parse(orig);
  ASSERT_TRUE(p);

  ProbeFields f;
  f.seq = t.seq + 5;
  f.payload = p->payload().subspan(5, 1);
  f.ttl = 3;
  f.ip_id = 0x4242;
  Buf out = probe_from(*p, f);
  ASSERT_FALSE(out.empty());

  auto probe = parse(out);
  ASSERT_TRUE(probe) << to_string(probe.error());
  EXPECT_EQ(probe->src, p->src);
  EXPECT_EQ(probe->dst, p->dst);
  EXPECT_EQ(probe->sport, p->sport);
  EXPECT_EQ(probe->dport, p->dport);
  EXPECT_EQ(probe->flow_label, p->flow_label);
  EXPECT_EQ(probe->ack, p->ack);
  EXPECT_EQ(probe->ttl, 3);
  EXPECT_EQ(probe->seq, t.seq + 5);
  EXPECT_EQ(probe->payload_len, 1u);
  EXPECT_EQ(probe->payload()[0], t.payload[5]);
  EXPECT_EQ(probe->tcp_header_len, p->tcp_header_len);  // timestamps kept
  EXPECT_TRUE(tcp_checksum_ok(out));
  if (!v6) {
    EXPECT_EQ(probe->ip_id, 0x4242);
    Buf ip(out.begin(), out.begin() + 20);
    EXPECT_EQ(testpkt::inet_sum(ip), 0);
  }
}

TEST_P(ProbeBuilder, NeverCarriesSynFinRstOrUrg) {
  auto t = data_segment(GetParam());
  t.flags = 0x3f;  // everything set
  Buf orig = testpkt::ip_packet(t);
  auto p = parse(orig);
  ASSERT_TRUE(p);
  Buf out(max_probe_size);
  ProbeFields f;
  f.seq = t.seq + 1;
  ASSERT_GT(build_probe(*p, f, MutableBytes(out)), 0u);
  const std::size_t tcp = GetParam() ? 40 : 20;
  EXPECT_EQ(out[tcp + 13], tcp_flag::ack | tcp_flag::psh);
}

TEST_P(ProbeBuilder, TakesTheNewerTimestampItIsGiven) {
  auto t = data_segment(GetParam());  // TSval 1, TSecr 2
  Buf orig = testpkt::ip_packet(t);
  auto p = parse(orig);
  ASSERT_TRUE(p);
  ProbeFields f;
  f.seq = t.seq + 1;
  f.payload = p->payload().subspan(1, 4);
  f.tsval = 0x01020304;
  Buf out = probe_from(*p, f);
  ASSERT_FALSE(out.empty());
  auto probe = parse(out);
  ASSERT_TRUE(probe);
  auto ts = parse_timestamps(probe->options());
  ASSERT_TRUE(ts);
  EXPECT_EQ(ts->val, 0x01020304u);
  EXPECT_EQ(ts->ecr, 2u);  // the echo stays the connection's
  EXPECT_TRUE(tcp_checksum_ok(out));

  // No timestamps option: nothing to replace, the header is copied as is.
  t.options = {1, 1, 1, 1};
  Buf plain = testpkt::ip_packet(t);
  auto q = parse(plain);
  ASSERT_TRUE(q);
  Buf out2 = probe_from(*q, f);
  ASSERT_FALSE(out2.empty());
  auto probe2 = parse(out2);
  ASSERT_TRUE(probe2);
  EXPECT_TRUE(std::equal(probe2->options().begin(), probe2->options().end(), q->options().begin(),
                         q->options().end()));
  EXPECT_TRUE(tcp_checksum_ok(out2));
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, ProbeBuilder, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "IPv6" : "IPv4"; });

TEST(SetTtl, KeepsIpv4HeaderChecksumValid) {
  Buf b = testpkt::ip_packet(data_segment(false));
  ASSERT_TRUE(set_ttl(MutableBytes(b), 2));
  EXPECT_EQ(b[8], 2);
  Buf ip(b.begin(), b.begin() + 20);
  EXPECT_EQ(testpkt::inet_sum(ip), 0);
  EXPECT_TRUE(tcp_checksum_ok(b));  // the TTL is outside the TCP checksum
}

TEST(SetTtl, SetsIpv6HopLimit) {
  Buf b = testpkt::ip_packet(data_segment(true));
  ASSERT_TRUE(set_ttl(MutableBytes(b), 7));
  EXPECT_EQ(b[7], 7);
  Buf junk = {0x10, 0, 0};
  EXPECT_FALSE(set_ttl(MutableBytes(junk), 1));
}

TEST(IcmpError, Ipv4EightByteQuote) {
  auto t = data_segment(false);
  Buf probe = testpkt::ip_packet(t);
  Buf icmp = testpkt::icmp_error(probe, "10.0.1.1", 8);
  auto e = parse_icmp4(Bytes(icmp));
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_EQ(e->kind, IcmpKind::time_exceeded);
  EXPECT_EQ(e->from.to_string(), "10.0.1.1");
  EXPECT_EQ(e->reply_ttl, 62);
  EXPECT_EQ(e->quote.src.to_string(), "10.0.0.2");
  EXPECT_EQ(e->quote.dport, 443);
  EXPECT_EQ(e->quote.seq, 1000u);
  EXPECT_EQ(e->quote.ip_id, 0x1234);
  EXPECT_EQ(e->quote.ip_payload_len, 132u);
  EXPECT_EQ(e->quote.ttl, 1);
  EXPECT_FALSE(e->quote.ack.has_value());
}

TEST(IcmpError, Ipv4LongQuoteShowsAck) {
  Buf probe = testpkt::ip_packet(data_segment(false));
  auto e = parse_icmp4(Bytes(testpkt::icmp_error(probe, "10.0.1.1", 60)));
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->quote.ack.has_value());
  EXPECT_EQ(*e->quote.ack, 5000u);
}

TEST(IcmpError, Ipv6TimeExceededAndUnreachable) {
  Buf probe = testpkt::ip_packet(data_segment(true));
  const auto from = testpkt::addr("2001:db8:1::1"), to = testpkt::addr("2001:db8::2");
  auto e = parse_icmp6(Bytes(testpkt::icmp_error(probe, "", 8)), from, to, 63);
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_EQ(e->kind, IcmpKind::time_exceeded);
  EXPECT_EQ(e->quote.flow_label, 0xabcdeu);
  EXPECT_EQ(e->quote.ip_payload_len, 132u);
  EXPECT_EQ(e->quote.seq, 1000u);
  auto u = parse_icmp6(Bytes(testpkt::icmp_error(probe, "", 8, true)), from, to, 63);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->kind, IcmpKind::unreachable);
}

TEST(IcmpError, RejectsHostileMessages) {
  Buf probe = testpkt::ip_packet(data_segment(false));
  Buf icmp = testpkt::icmp_error(probe, "10.0.1.1", 8);

  Buf short_quote(icmp.begin(), icmp.end() - 4);  // only 4 bytes of TCP
  EXPECT_EQ(parse_icmp4(Bytes(short_quote)).error(), ParseError::truncated);

  Buf echo = icmp;
  echo[20] = 0;  // echo reply
  EXPECT_EQ(parse_icmp4(Bytes(echo)).error(), ParseError::not_icmp_error);

  Buf rfc4884_liar = icmp;
  rfc4884_liar[20 + 5] = 200;  // claims an 800-byte original datagram
  EXPECT_EQ(parse_icmp4(Bytes(rfc4884_liar)).error(), ParseError::bad_extension);

  Buf quoted_udp = icmp;
  quoted_udp[28 + 9] = 17;
  EXPECT_EQ(parse_icmp4(Bytes(quoted_udp)).error(), ParseError::not_tcp);

  Buf quoted_len_liar = icmp;
  testpkt::put16(quoted_len_liar, 28 + 2, 10);  // total length below the header
  EXPECT_EQ(parse_icmp4(Bytes(quoted_len_liar)).error(), ParseError::bad_total_length);

  for (std::size_t n = 0; n < icmp.size(); ++n) {
    Buf cut(icmp.begin(), icmp.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_FALSE(parse_icmp4(Bytes(cut))) << "cut at " << n;
  }
}

TEST(IcmpError, Rfc4884ExtensionsAreSeparatedFromTheQuote) {
  Buf probe = testpkt::ip_packet(data_segment(false));
  Buf icmp = testpkt::icmp_error(probe, "10.0.1.1", 200);  // whole probe quoted
  // Pad the quote to 128 bytes... it is 152 already: round to 40 words = 160.
  icmp.resize(28 + 160, 0);
  icmp[20 + 5] = 40;
  Buf ext = {0x20, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 0};  // version 2 + one object
  icmp.insert(icmp.end(), ext.begin(), ext.end());
  testpkt::put16(icmp, 2, static_cast<std::uint16_t>(icmp.size()));
  auto e = parse_icmp4(Bytes(icmp));
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_EQ(e->extensions.size(), ext.size());
  EXPECT_EQ(e->quote.seq, 1000u);
}

TEST(IcmpPacket, AQueuedIpv4PacketReadsAsTheRawSocketsDatagram) {
  Buf probe = testpkt::ip_packet(data_segment(false));
  Buf icmp = testpkt::icmp_error(probe, "10.0.1.1", 8);
  auto e = parse_icmp_packet(Bytes(icmp), static_cast<std::uint32_t>(icmp.size()));
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_EQ(e->from.to_string(), "10.0.1.1");
  EXPECT_EQ(e->quote.seq, 1000u);
  // A TCP packet is no ICMP.
  EXPECT_EQ(parse_icmp_packet(Bytes(probe), static_cast<std::uint32_t>(probe.size())).error(),
            ParseError::not_icmp_error);
}

TEST(IcmpPacket, AQueuedIpv6PacketTakesItsAddressesAndHopLimitFromItsHeader) {
  Buf probe = testpkt::ip_packet(data_segment(true));
  Buf message = testpkt::icmp_error(probe, "", 8);
  Buf packet(40, 0);
  packet[0] = 0x60;
  testpkt::put16(packet, 4, static_cast<std::uint16_t>(message.size()));
  packet[6] = 58;
  packet[7] = 61;
  const auto from = testpkt::addr("2001:db8:1::1"), to = testpkt::addr("2001:db8::2");
  std::copy_n(from.bytes.begin(), 16, packet.begin() + 8);
  std::copy_n(to.bytes.begin(), 16, packet.begin() + 24);
  packet.insert(packet.end(), message.begin(), message.end());
  auto e = parse_icmp_packet(Bytes(packet), static_cast<std::uint32_t>(packet.size()));
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_EQ(e->from, from);
  EXPECT_EQ(e->to, to);
  EXPECT_EQ(e->reply_ttl, 61);
  EXPECT_EQ(e->quote.seq, 1000u);
  EXPECT_EQ(e->quote.ip_payload_len, 132u);
}

TEST(IcmpPacket, ACopyCutShortLosesOnlyItsExtensions) {
  Buf probe = testpkt::ip_packet(data_segment(false));
  Buf icmp = testpkt::icmp_error(probe, "10.0.1.1", 200);
  icmp.resize(28 + 160, 0);
  icmp[20 + 5] = 40;
  Buf ext = {0x20, 0, 0, 0, 0, 8, 1, 1, 0, 0, 0, 0};
  icmp.insert(icmp.end(), ext.begin(), ext.end());
  testpkt::put16(icmp, 2, static_cast<std::uint16_t>(icmp.size()));
  const auto wire_len = static_cast<std::uint32_t>(icmp.size());
  Buf cut(icmp.begin(), icmp.begin() + 150);  // the queue copied 150 bytes
  auto e = parse_icmp_packet(Bytes(cut), wire_len);
  ASSERT_TRUE(e) << to_string(e.error());
  EXPECT_TRUE(e->extensions.empty());
  EXPECT_EQ(e->quote.seq, 1000u);
  // Not cut, the same bytes lie about their length.
  EXPECT_EQ(parse_icmp_packet(Bytes(cut), 150).error(), ParseError::bad_extension);
}

TEST(Checksum, IncrementalUpdateMatchesFullRecompute) {
  Buf b = testpkt::ip_packet(data_segment(false));
  for (std::uint8_t ttl : {std::uint8_t{1}, std::uint8_t{2}, std::uint8_t{64}, std::uint8_t{255}}) {
    Buf c = b;
    set_ttl(MutableBytes(c), ttl);
    Buf ip(c.begin(), c.begin() + 20);
    ip[10] = ip[11] = 0;
    EXPECT_EQ(load16(Bytes(c), 10), testpkt::inet_sum(ip)) << int{ttl};
  }
}

TEST(CompleteTcpChecksum, ReplacesAnOffloadPartialSumInBothFamilies) {
  for (bool v6 : {false, true}) {
    testpkt::Tcp t;
    if (v6) {
      t.src = "2001:db8::2";
      t.dst = "2001:db8:9::2";
    }
    t.payload.assign(33, 'q');  // odd length: the last byte is padded
    Buf b = testpkt::ip_packet(t);
    const std::size_t csum_at = (v6 ? 40 : 20) + 16;
    b[csum_at] = 0x12;  // what offload leaves: not the real checksum
    b[csum_at + 1] = 0x34;
    ASSERT_TRUE(complete_tcp_checksum(MutableBytes(b)));
    EXPECT_TRUE(tcp_checksum_ok(b)) << (v6 ? "IPv6" : "IPv4");
  }
  Buf cut = testpkt::ip_packet(testpkt::Tcp{});
  cut.resize(cut.size() - 1);
  EXPECT_FALSE(complete_tcp_checksum(MutableBytes(cut)));
}
