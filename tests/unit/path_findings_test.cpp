// What the path does to the connection, found in the replies: middleboxes
// that rewrite fields (tracebox's method), a firewall that shifts sequence
// numbers, NAT, MPLS label stacks, a route that changed between rounds,
// where probes start being lost, and the distance both ways. Each on the
// simulated path, IPv4 and IPv6 where it applies.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "nfqtrace/core/engine.hpp"
#include "nfqtrace/output/format.hpp"
#include "nfqtrace/wire/checksum.hpp"
#include "nfqtrace/wire/probe_builder.hpp"
#include "path_sim.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;
using core::Field;
using sim::Network;
using sim::Path;

namespace {

Path routers(bool v6, std::size_t quote_bytes = 1000) {
  Path p;
  p.routers = v6 ? std::vector<std::string>{"2001:db8:1::1", "2001:db8:2::1", "2001:db8:3::1"}
                 : std::vector<std::string>{"10.0.1.1", "10.0.2.1", "10.0.3.1"};
  p.quote_bytes = quote_bytes;  // routers quote the whole probe (RFC 1812, RFC 4443)
  return p;
}

testpkt::Tcp flow(bool v6, std::uint8_t tos = 0) {
  testpkt::Tcp t;
  if (v6) {
    t.src = "2001:db8::2";
    t.dst = "2001:db8:9::2";
  }
  t.tos = tos;
  return t;
}

bool is_v6(const testpkt::Buf& b) { return (b[0] >> 4) == 6; }

// The traffic class byte of a packet, and setting it (IPv4: header checksum fixed).
std::uint8_t traffic_class(const testpkt::Buf& b) {
  return is_v6(b) ? static_cast<std::uint8_t>((b[0] & 0x0f) << 4 | b[1] >> 4) : b[1];
}
void set_traffic_class(testpkt::Buf& b, std::uint8_t tc) {
  if (is_v6(b)) {
    b[0] = static_cast<std::uint8_t>(0x60 | tc >> 4);
    b[1] = static_cast<std::uint8_t>((tc & 0x0f) << 4 | (b[1] & 0x0f));
    return;
  }
  b[1] = tc;
  testpkt::put16(b, 10, 0);
  testpkt::put16(b, 10, testpkt::inet_sum(testpkt::Buf(b.begin(), b.begin() + 20)));
}
std::size_t tcp_at(const testpkt::Buf& b) { return is_v6(b) ? 40 : std::size_t{b[0] & 0x0fu} * 4; }
void fix_tcp_checksum(testpkt::Buf& b) {
  ASSERT_TRUE(wire::complete_tcp_checksum(wire::MutableBytes(b)));
}

core::EngineConfig config() {
  core::EngineConfig c;
  c.probes_per_second = 0;
  return c;
}

const core::Middlebox* middlebox(const core::TraceResult& t, Field f) {
  for (const auto& m : t.middleboxes)
    if (m.field == f) return &m;
  return nullptr;
}

}  // namespace

class Findings : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(BothFamilies, Findings, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "IPv6" : "IPv4"; });

TEST_P(Findings, ARouterRewritingDscpShowsFromTheNextHopOn) {
  const bool v6 = GetParam();
  Path path = routers(v6);
  // After hop 2, DSCP 0 becomes AF11 (10); ECN is left alone.
  path.rewrite_after[2] = [](testpkt::Buf& b) {
    set_traffic_class(b, static_cast<std::uint8_t>(10 << 2 | (traffic_class(b) & 3)));
  };
  core::Engine engine(config());
  Network net(engine, path, flow(v6));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const core::TraceResult& t = net.traces[0];
  const Field dscp = v6 ? Field::ip6_dscp : Field::ip_dscp;
  const core::Middlebox* m = middlebox(t, dscp);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->first_seen_ttl, 3);
  EXPECT_EQ(std::get<std::uint64_t>(m->sent), 0u);
  EXPECT_EQ(std::get<std::uint64_t>(m->seen), 10u);
  EXPECT_EQ(t.middleboxes.size(), 1u) << "nothing else changed";
  for (const auto& hop : t.hops) {
    for (const auto& r : hop.replies) {
      if (r.kind == core::ReplyKind::destination) continue;
      EXPECT_EQ(r.changes.contains(dscp), hop.ttl >= 3) << "ttl " << int{hop.ttl};
    }
  }
  const std::string text = output::trace_text(t);
  EXPECT_NE(text.find("DSCP 0 -> 10 between hop 2 and hop 3"), std::string::npos) << text;
  const auto j = output::trace_json(t);
  EXPECT_EQ(j["middleboxes"][0]["field"], v6 ? "ip6.dscp" : "ip.dscp");
  EXPECT_EQ(j["middleboxes"][0]["first_seen_ttl"], 3);
  EXPECT_EQ(j["middleboxes"][0]["sent"], 0);
  EXPECT_EQ(j["middleboxes"][0]["seen"], 10);
  EXPECT_EQ(j["hops"][2]["replies"][0]["changes"], nlohmann::json::array({v6 ? "ip6.dscp" : "ip.dscp"}));
  EXPECT_EQ(j["hops"][0]["replies"][0]["changes"], nlohmann::json::array());
}

TEST_P(Findings, ProbesThatMayReachThePeerAreNotEcnCapableAndClearingEcnShowsBelowIt) {
  const bool v6 = GetParam();
  Path path = routers(v6);
  path.rewrite_after[1] = [](testpkt::Buf& b) {
    set_traffic_class(b, static_cast<std::uint8_t>(traffic_class(b) & 0xfc));
  };
  core::Engine engine(config());
  Network net(engine, path, flow(v6, /*ECT(0)*/ 2));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const int distance = path.distance();
  for (const auto& probe : net.sent_probes_) {
    const int ttl = v6 ? probe[7] : probe[8];
    const unsigned ecn = traffic_class(probe) & 3u;
    if (ttl >= distance) {
      EXPECT_EQ(ecn, 0u) << "a probe that reaches the peer carries ECT";
    }
  }
  // The second pass knows the distance: below it, the connection's ECT(0),
  // which the router after hop 1 clears.
  const core::Middlebox* m = middlebox(net.traces[0], v6 ? Field::ip6_ecn : Field::ip_ecn);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->first_seen_ttl, 2);
  EXPECT_EQ(std::get<std::uint64_t>(m->sent), 2u);
  EXPECT_EQ(std::get<std::uint64_t>(m->seen), 0u);
}

TEST_P(Findings, EachComparedFieldIsNamedWhenAMiddleboxChangesIt) {
  const bool v6 = GetParam();
  struct Case {
    Field field;
    std::function<void(testpkt::Buf&)> change;
  };
  const auto tcp = [](testpkt::Buf& b) { return tcp_at(b); };
  std::vector<Case> cases = {
      {Field::tcp_ack, [&](testpkt::Buf& b) { testpkt::put32(b, tcp(b) + 8, 77); fix_tcp_checksum(b); }},
      {Field::tcp_window, [&](testpkt::Buf& b) { testpkt::put16(b, tcp(b) + 14, 9); fix_tcp_checksum(b); }},
      {Field::tcp_flags, [&](testpkt::Buf& b) { b[tcp(b) + 13] |= 0x40; fix_tcp_checksum(b); }},
      {Field::payload, [&](testpkt::Buf& b) { b[tcp(b) + 20] ^= 0xff; fix_tcp_checksum(b); }},
      {Field::tcp_dport, [&](testpkt::Buf& b) { testpkt::put16(b, tcp(b) + 2, 8443); fix_tcp_checksum(b); }},
  };
  if (v6) {
    cases.push_back({Field::ip6_flow_label, [](testpkt::Buf& b) { b[3] ^= 0x01; }});
  } else {
    cases.push_back({Field::ip_df, [](testpkt::Buf& b) {
                       b[6] &= 0xbf;
                       testpkt::put16(b, 10, 0);
                       testpkt::put16(b, 10, testpkt::inet_sum(testpkt::Buf(b.begin(), b.begin() + 20)));
                     }});
    cases.push_back({Field::ip_id, [](testpkt::Buf& b) { b[5] ^= 0x01; }});
  }
  for (const Case& c : cases) {
    Path path = routers(v6);
    path.rewrite_after[1] = c.change;
    core::Engine engine(config());
    Network net(engine, path, flow(v6));
    net.stream(5, 10ms);
    bool seen = false;
    for (const auto& h : net.hops) seen = seen || (h.ttl >= 2 && h.reply.changes.contains(c.field));
    // A changed port or IP ID names no flow or no probe: those replies go
    // unmatched, and that is what the counters show.
    if (c.field == Field::tcp_dport || c.field == Field::ip_id) {
      EXPECT_FALSE(seen);
      EXPECT_GT(engine.counters().icmp_no_flow + engine.counters().icmp_no_probe, 0u);
      continue;
    }
    EXPECT_TRUE(seen) << core::to_string(c.field);
  }
}

TEST(QuoteDiff, ComparesOnlyWhatAnEightByteQuoteHolds) {
  testpkt::Tcp t = flow(false);
  t.payload = {'a', 'b', 'c'};
  const testpkt::Buf sent = testpkt::ip_packet(t);
  auto packet = wire::parse_tcp_packet(wire::Bytes(sent), static_cast<std::uint32_t>(sent.size()));
  ASSERT_TRUE(packet);
  const core::SentHeader header = core::sent_header_of(*packet);
  testpkt::Buf changed = sent;
  testpkt::put16(changed, 20 + 14, 1);  // the window: beyond 8 bytes of TCP
  // (The views of a parsed error point into its bytes: they are kept.)
  const testpkt::Buf short_error = testpkt::icmp_error(changed, "10.0.1.1", 8);
  const auto short_quote = wire::parse_icmp4(wire::Bytes(short_error));
  ASSERT_TRUE(short_quote);
  const core::FlowKey key{testpkt::addr(t.src), testpkt::addr(t.dst), t.sport, t.dport};
  EXPECT_TRUE(core::compare(header, key, short_quote->quote).fields.empty());
  const testpkt::Buf long_error = testpkt::icmp_error(changed, "10.0.1.1", 100);
  const auto long_quote = wire::parse_icmp4(wire::Bytes(long_error));
  ASSERT_TRUE(long_quote);
  const core::QuoteDiff diff = core::compare(header, key, long_quote->quote);
  EXPECT_TRUE(diff.fields.contains(Field::tcp_window));
  EXPECT_FALSE(diff.fields.contains(Field::tcp_checksum)) << "not recomputed by this device";
  ASSERT_EQ(diff.changes.size(), 1u);
  EXPECT_EQ(std::get<std::uint64_t>(diff.changes[0].sent), 502u);
  EXPECT_EQ(std::get<std::uint64_t>(diff.changes[0].seen), 1u);
}

TEST_P(Findings, ASequenceShiftingFirewallHidesNoRouterAndIsReported) {
  const bool v6 = GetParam();
  // IPv4: even RFC 792 quotes (ports, sequence number; the IP ID names the
  // probe). IPv6 has no IP ID: its routers quote the payload too (RFC 4443).
  Path path = routers(v6, v6 ? 1000 : 8);
  path.routers.push_back(v6 ? "2001:db8:4::1" : "10.0.4.1");
  constexpr std::uint32_t shift = 0x9e3779b9;
  path.rewrite_after[1] = [](testpkt::Buf& b) {
    const std::size_t at = tcp_at(b) + 4;
    testpkt::put32(b, at, (std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 |
                           std::uint32_t{b[at + 2]} << 8 | b[at + 3]) + shift);
    fix_tcp_checksum(b);
  };
  core::Engine engine(config());
  Network net(engine, path, flow(v6));
  net.stream(300, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const core::TraceResult& t = net.traces[0];
  EXPECT_EQ(t.reason, core::StopReason::reached);
  ASSERT_EQ(t.hops.size(), 5u);
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_FALSE(t.hops[i].replies.empty()) << "ttl " << i + 1 << " silent";
    EXPECT_EQ(t.hops[i].replies[0].addr.to_string(), path.routers[i]);
    EXPECT_EQ(t.hops[i].replies[0].changes.contains(Field::tcp_seq), i >= 1);
  }
  ASSERT_EQ(t.rewrites.size(), 1u);
  EXPECT_EQ(t.rewrites[0].field, Field::tcp_seq);
  EXPECT_EQ(t.rewrites[0].offset, shift);
  EXPECT_EQ(t.rewrites[0].first_seen_ttl, 2);
  const auto j = output::trace_json(t);
  EXPECT_EQ(j["rewrites"][0]["field"], "tcp.seq");
  EXPECT_EQ(j["rewrites"][0]["offset"], shift);
  EXPECT_EQ(j["rewrites"][0]["first_seen_ttl"], 2);
  // Each hop's replies have the RTTs of their own probes.
  for (const auto& r : t.hops[3].replies) EXPECT_EQ(r.rtt, 8ms);
  // Every router reply counts as matched, those held until the shift was
  // confirmed too.
  std::uint64_t icmp_replies = 0;
  for (const auto& hop : t.hops)
    for (const auto& r : hop.replies) icmp_replies += r.kind != core::ReplyKind::destination;
  EXPECT_EQ(engine.counters().icmp_matched, icmp_replies);
}

TEST_P(Findings, AShiftFoundInOneRoundMatchesAtOnceInTheNext) {
  const bool v6 = GetParam();
  Path path = routers(v6, v6 ? 1000 : 8);
  path.rewrite_after[1] = [](testpkt::Buf& b) {
    const std::size_t at = tcp_at(b) + 4;
    b[at] ^= 0x40;  // + 2^30 (mod 2^32) on this bit, as any constant would do
    fix_tcp_checksum(b);
  };
  auto c = config();
  c.trace.repeat = 2s;
  core::Engine engine(c);
  Network net(engine, path, flow(v6));
  net.stream(300, 10ms);
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(engine.counters().icmp_held, 1u) << "held only until the first confirmation";
  EXPECT_EQ(net.traces[1].rewrites.size(), 1u);
}

TEST_P(Findings, AFloodOfConsistentlyShiftedForgeriesMakesNoHop) {
  const bool v6 = GetParam();
  core::Engine engine(config());
  Network net(engine, routers(v6, 8), flow(v6));
  net.stream(1, 0ms);  // the first wave is out, nothing answered yet
  std::mt19937 rng(99);
  testpkt::Tcp forged = flow(v6);
  // Off-path: the forger knows the ports, not the sequence numbers; it
  // shifts every guess by the same amount, and guesses IPv4 IP IDs.
  const auto base = static_cast<std::uint32_t>(rng());
  for (int i = 0; i < 20000; ++i) {
    forged.seq = base + static_cast<std::uint32_t>(i % 512);
    forged.payload.assign(static_cast<std::size_t>(1 + i % 16), 'x');
    forged.ip_id = static_cast<std::uint16_t>(rng());
    forged.ttl = 1;
    net.inject_icmp(testpkt::icmp_error(testpkt::ip_packet(forged), v6 ? "" : "203.0.113.66", 8),
                    v6 ? "2001:db8:66::66" : "");
  }
  net.stream(300, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  for (const auto& hop : net.traces[0].hops)
    for (const auto& r : hop.replies) {
      EXPECT_NE(r.addr.to_string(), "203.0.113.66");
      EXPECT_NE(r.addr.to_string(), "2001:db8:66::66");
    }
  EXPECT_TRUE(net.traces[0].rewrites.empty());
}

TEST_P(Findings, MplsLabelStacksAreReadFromTheExtensions) {
  const bool v6 = GetParam();
  Path path = routers(v6, 200);
  path.mpls_at[2] = {{24001, 0, 0, 254}, {16, 5, 1, 255}};
  core::Engine engine(config());
  Network net(engine, path, flow(v6));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& hop2 = net.traces[0].hops[1];
  ASSERT_FALSE(hop2.replies.empty());
  const std::vector<wire::MplsEntry> expected = {{24001, 0, false, 254}, {16, 5, true, 255}};
  for (const auto& r : hop2.replies) EXPECT_EQ(r.mpls, expected);
  EXPECT_TRUE(net.traces[0].hops[0].replies[0].mpls.empty());
  const auto j = output::trace_json(net.traces[0]);
  EXPECT_EQ(j["hops"][1]["replies"][0]["mpls"][0]["label"], 24001);
  EXPECT_EQ(j["hops"][1]["replies"][0]["mpls"][1]["tc"], 5);
  EXPECT_EQ(j["hops"][1]["replies"][0]["mpls"][1]["s"], 1);
  EXPECT_EQ(j["hops"][1]["replies"][0]["mpls"][0]["ttl"], 254);
  const std::string text = output::trace_text(net.traces[0]);
  EXPECT_NE(text.find("[MPLS: Lbl 24001 TC 0 S 0 TTL 254] [MPLS: Lbl 16 TC 5 S 1 TTL 255]"),
            std::string::npos)
      << text;
}

TEST(Mpls, AnExtensionWithABadChecksumIsRefused) {
  testpkt::Tcp t = flow(false);
  const testpkt::Buf error =
      testpkt::with_mpls(testpkt::icmp_error(testpkt::ip_packet(t), "10.0.1.1", 100), {{17, 0, 1, 1}});
  auto good = wire::parse_icmp4(wire::Bytes(error));
  ASSERT_TRUE(good);
  auto stack = wire::parse_mpls_extension(good->extensions);
  ASSERT_TRUE(stack);
  ASSERT_EQ(stack->count, 1);
  EXPECT_EQ(stack->entries[0].label, 17u);
  std::vector<std::uint8_t> broken(good->extensions.begin(), good->extensions.end());
  broken.back() ^= 1;
  EXPECT_FALSE(wire::parse_mpls_extension(wire::Bytes(broken)));
}

TEST_P(Findings, ANatThatTranslatesTheQuoteBackButNotItsChecksumIsFound) {
  const bool v6 = GetParam();
  Path path = routers(v6);
  // Translated on the way out; the router's quote translated back on the
  // way in, all but the TCP checksum: what the quote keeps is the checksum
  // of the translated packet.
  path.rewrite_after[1] = [](testpkt::Buf& b) { b[tcp_at(b) + 16] ^= 0x5a; };
  core::Engine engine(config());
  Network net(engine, path, flow(v6));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& nat = net.traces[0].nat;
  ASSERT_TRUE(nat);
  ASSERT_TRUE(nat->first_seen_ttl);
  EXPECT_EQ(*nat->first_seen_ttl, 2);
  EXPECT_NE(nat->evidence.find("tcp.checksum"), std::string::npos) << nat->evidence;
  EXPECT_EQ(output::trace_json(net.traces[0])["nat"]["first_seen_ttl"], 2);
}

TEST_P(Findings, ARouterAnsweringFromTheDestinationsAddressIsANat) {
  const bool v6 = GetParam();
  Path path = routers(v6);
  // The destination's address is the NAT's: it answers at ttl 2, and
  // passes the probes on to the host behind it.
  path.routers[1] = flow(v6).dst;
  core::Engine engine(config());
  Network net(engine, path, flow(v6));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  ASSERT_TRUE(net.traces[0].nat);
  EXPECT_EQ(net.traces[0].nat->first_seen_ttl, 2);
  const std::string text = output::trace_text(net.traces[0]);
  EXPECT_NE(text.find("NAT: time-exceeded from the destination's address at ttl 2"),
            std::string::npos) << text;
}

TEST_P(Findings, NoNatWhereNothingWasTranslated) {
  core::Engine engine(config());
  Network net(engine, routers(GetParam()), flow(GetParam()));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_FALSE(net.traces[0].nat);
  EXPECT_TRUE(net.traces[0].middleboxes.empty());
  EXPECT_FALSE(output::trace_json(net.traces[0]).contains("nat"));
}

TEST_P(Findings, ARouteChangedBetweenRoundsIsReportedOnceWithWhatChanged) {
  const bool v6 = GetParam();
  auto c = config();
  c.trace.repeat = 2s;
  core::Engine engine(c);
  Path path = routers(v6);
  auto net = std::make_unique<Network>(engine, path, flow(v6));
  net->stream(300, 10ms);  // rounds 1 and 2 on the same path
  ASSERT_EQ(net->traces.size(), 2u);
  EXPECT_TRUE(net->path_changes.empty());
  // The route changes: a new router at ttl 2.
  Path changed = path;
  changed.routers[1] = v6 ? "2001:db8:22::1" : "10.0.22.1";
  net->path() = changed;
  net->stream(200, 10ms);
  ASSERT_EQ(net->traces.size(), 3u);
  ASSERT_EQ(net->path_changes.size(), 1u);
  const core::PathChange& change = net->path_changes[0];
  EXPECT_EQ(change.round, 3u);
  EXPECT_EQ(change.previous_round, 2u);
  ASSERT_EQ(change.changes.size(), 1u);
  EXPECT_EQ(change.changes[0].ttl, 2);
  ASSERT_EQ(change.changes[0].from.size(), 1u);
  EXPECT_EQ(change.changes[0].from[0].to_string(), path.routers[1]);
  EXPECT_EQ(change.changes[0].to[0].to_string(), changed.routers[1]);
  const auto j = output::path_change_json(change);
  EXPECT_EQ(j["type"], "path_change");
  EXPECT_EQ(j["round"], 3);
  EXPECT_EQ(j["previous_round"], 2);
  EXPECT_EQ(j["changes"][0]["ttl"], 2);
  EXPECT_EQ(j["changes"][0]["from"][0], path.routers[1]);
  EXPECT_EQ(j["changes"][0]["to"][0], changed.routers[1]);
  EXPECT_NE(output::path_change_text(change).find("ttl 2 " + path.routers[1] + " -> " + changed.routers[1]),
            std::string::npos);
}

TEST_P(Findings, LossFromAHopOnIsFoundAndALimitingRouterIsNotLoss) {
  const bool v6 = GetParam();
  auto c = config();
  c.trace.ttl_repeat = 10;
  core::Engine engine(c);
  Path path = routers(v6);
  path.lossy_after = 2;  // the link after hop 2 drops a third
  path.loss = 0.34;
  Network net(engine, path, flow(v6));
  net.stream(400, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  ASSERT_TRUE(net.traces[0].loss_from_ttl);
  EXPECT_EQ(*net.traces[0].loss_from_ttl, 3);
  EXPECT_EQ(output::trace_json(net.traces[0])["loss_from_ttl"], 3);

  // A lossless path: nothing reported.
  core::Engine clean_engine(c);
  Network clean(clean_engine, routers(v6), flow(v6));
  clean.stream(400, 10ms);
  ASSERT_EQ(clean.traces.size(), 1u);
  EXPECT_FALSE(clean.traces[0].loss_from_ttl);
}

// What a user of the live lines relies on: each is a reply of its round's
// trace record, and each reply there was a line. Under loss a probe further
// out may reach the destination before a lower one does.
TEST_P(Findings, UnderLossLiveHopsAreTheTracesReplies) {
  const bool v6 = GetParam();
  auto c = config();
  c.trace.ttl_repeat = 10;
  using Reply = std::tuple<std::uint32_t, std::uint8_t, std::string, core::Duration>;
  for (unsigned seed = 1; seed <= 40; ++seed) {
    core::Engine engine(c);
    Path path = routers(v6);
    path.loss = 0.2;  // every link, both ways
    path.seed = seed;
    Network net(engine, path, flow(v6));
    net.stream(400, 10ms);
    std::multiset<Reply> lines, recorded;
    for (const core::HopEvent& h : net.hops)
      lines.insert({h.round, h.ttl, h.reply.addr.to_string(), h.reply.rtt});
    for (const core::TraceResult& t : net.traces)
      for (const core::Hop& hop : t.hops)
        for (const core::Reply& r : hop.replies)
          recorded.insert({t.round, hop.ttl, r.addr.to_string(), r.rtt});
    EXPECT_EQ(lines, recorded) << "seed " << seed;
  }
}

// Across a path where seven exchanges in ten are lost (a probe or its
// answer), the destination is found at its distance, never one further for
// its own TTL's answers all lost (seeds 19 and 85 showed it at 5, its TTL
// silent, before): a TTL below the destination that went unanswered while
// the destination answered few is asked again, in whole --ttlrepeat
// batches, two at most.
TEST_P(Findings, UnderHeavyLossTheDestinationIsNotShownFurther) {
  const bool v6 = GetParam();
  auto c = config();
  c.trace.ttl_repeat = 10;
  for (unsigned seed = 1; seed <= 100; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    core::Engine engine(c);
    Path path = routers(v6);
    path.loss = 0.7;
    path.seed = seed;
    Network net(engine, path, flow(v6));
    net.stream(400, 10ms);
    ASSERT_FALSE(net.traces.empty());
    const core::TraceResult& t = net.traces[0];
    ASSERT_EQ(t.reason, core::StopReason::reached);
    EXPECT_EQ(t.hops.size(), 4u);
    for (const core::Hop& hop : t.hops) {
      EXPECT_EQ(hop.probes_sent % 10, 0) << "ttl " << int{hop.ttl};
      EXPECT_LE(hop.probes_sent, 30) << "ttl " << int{hop.ttl};
    }
  }
}

TEST_P(Findings, BothDistancesAreKnown) {
  const bool v6 = GetParam();
  core::Engine engine(config());
  Network net(engine, routers(v6), flow(v6));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto j = output::trace_json(net.traces[0]);
  EXPECT_EQ(j["forward_hops"], 4);
  // The peer's D-SACKs arrive with 64 - 3 routers: 4 hops back.
  EXPECT_EQ(j["return_hops"], 4);
  // Each reply: the sim's ICMP arrives with 62 (IPv4) or 60 (IPv6) left of 64.
  EXPECT_EQ(j["hops"][0]["replies"][0]["return_hops"], v6 ? 5 : 3);
}
