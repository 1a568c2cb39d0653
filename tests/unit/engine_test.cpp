// The trace engine driven by a simulated path and a fake clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "nfqtrace/core/engine.hpp"
#include "nfqtrace/output/format.hpp"
#include "path_sim.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;
using core::StopReason;
using sim::Network;
using sim::Path;

namespace {

Path three_routers() {
  Path p;
  p.routers = {"10.0.1.1", "10.0.2.1", "10.0.3.1"};
  return p;
}

testpkt::Tcp client_flow(bool v6 = false) {
  testpkt::Tcp t;
  if (v6) {
    t.src = "2001:db8::2";
    t.dst = "2001:db8:9::2";
  }
  t.flags = 0x18;
  return t;
}

// The client's flow from another local port: a second connection.
testpkt::Tcp other_flow(std::uint16_t sport) {
  testpkt::Tcp t = client_flow();
  t.sport = sport;
  return t;
}

core::EngineConfig config(core::Mode mode = core::Mode::dup) {
  core::EngineConfig c;
  c.trace.mode = mode;
  c.trace.max_ttl = 30;
  c.trace.ttl_repeat = 3;
  c.trace.timeout = 1s;
  c.trace.gap_limit = 5;
  return c;
}

// Mangle mode, lowering the TTL of one packet in every `packet_freq`.
core::EngineConfig mangle_config(std::uint32_t packet_freq) {
  auto c = config(core::Mode::mangle);
  c.trace.packet_freq = packet_freq;
  return c;
}

// A packet of the peer of the simulated flow.
testpkt::Tcp from_peer(Network& net, std::uint8_t flags, std::uint32_t seq) {
  testpkt::Tcp t;
  t.src = net.flow().dst;
  t.dst = net.flow().src;
  t.sport = net.flow().dport;
  t.dport = net.flow().sport;
  t.flags = flags;
  t.seq = seq;
  return t;
}

std::vector<std::string> addrs(const core::Hop& h) {
  std::vector<std::string> out;
  for (const auto& r : h.replies) out.push_back(r.addr.to_string());
  return out;
}

// The client of a download: bare ACKs 10 ms apart, each acknowledging one
// more full segment of the peer's data, and never any data of its own.
void send_download_acks(Network& net, int count) {
  for (int i = 0; i < count; ++i) {
    testpkt::Tcp ack = net.flow();
    ack.flags = 0x10;
    ack.ack += static_cast<std::uint32_t>(1448 * i);
    net.send(ack);
    net.advance(10ms);
  }
}

// The flow's own FIN (with its ACK) or SYN, at its current sequence number.
void send_fin(Network& net) {
  testpkt::Tcp fin = net.flow();
  fin.flags = 0x11;
  net.send(fin);
}
void send_syn(Network& net) {
  testpkt::Tcp syn = net.flow();
  syn.flags = 0x02;
  net.send(syn);
}

}  // namespace

class DupTrace : public ::testing::TestWithParam<bool> {};

TEST_P(DupTrace, FindsEveryHopAndTheDestinationWithExactRtts) {
  const bool v6 = GetParam();
  Path path = three_routers();
  if (v6) path.routers = {"2001:db8:1::1", "2001:db8:2::1", "2001:db8:3::1"};
  core::Engine engine(config());
  Network net(engine, path, client_flow(v6));
  net.stream(20, 10ms);

  ASSERT_EQ(net.traces.size(), 1u);
  const core::TraceResult& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  EXPECT_TRUE(t.reached);
  EXPECT_EQ(t.round, 1u);
  ASSERT_EQ(t.hops.size(), 4u);
  for (int ttl = 1; ttl <= 3; ++ttl) {
    const auto& hop = t.hops[static_cast<std::size_t>(ttl - 1)];
    EXPECT_EQ(hop.ttl, ttl);
    ASSERT_EQ(hop.replies.size(), 3u) << "ttl " << ttl;
    for (const auto& r : hop.replies) {
      EXPECT_EQ(r.addr.to_string(), path.routers[static_cast<std::size_t>(ttl - 1)]);
      EXPECT_EQ(r.kind, core::ReplyKind::time_exceeded);
      EXPECT_EQ(r.rtt, 2 * ttl * 1ms);  // the RTT of its own probe
    }
  }
  const auto& last = t.hops[3];
  ASSERT_EQ(last.replies.size(), 3u);
  for (const auto& r : last.replies) {
    EXPECT_EQ(r.kind, core::ReplyKind::destination);
    EXPECT_EQ(r.addr.to_string(), client_flow(v6).dst);
    EXPECT_EQ(r.rtt, 8ms);
  }
  // Streamed hop events: one per reply, the moment it arrived.
  EXPECT_EQ(net.hops.size(), 12u);
  // The whole path within a few round trips of the first packet: the second
  // pass leaves with the first packet after the destination answered.
  EXPECT_LE(t.end.mono - t.start.mono, 30ms);
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, DupTrace, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "IPv6" : "IPv4"; });

TEST(DupTrace, ProbesCarryDistinctLengthsApartAndFewDuplicatesReachThePeer) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(20, 10ms);
  struct Range {
    std::uint32_t seq, len;
  };
  std::vector<Range> ranges;
  std::set<std::uint32_t> first_lengths;
  for (const auto& b : net.sent_probes_) {
    auto p = wire::parse_tcp_packet(wire::Bytes(b), static_cast<std::uint32_t>(b.size()));
    ASSERT_TRUE(p);
    EXPECT_GE(p->payload_len, 1u);
    EXPECT_LE(p->payload_len, core::probe_length_count);
    if (ranges.size() < core::probe_length_count) first_lengths.insert(p->payload_len);
    ranges.push_back({p->seq, p->payload_len});
  }
  // The first wave: each length once, so that a quote's IP length names its probe.
  EXPECT_EQ(first_lengths.size(), core::probe_length_count);
  // No two probes overlap or touch: a receiver merges none into one range.
  for (std::size_t i = 0; i < ranges.size(); ++i)
    for (std::size_t j = i + 1; j < ranges.size(); ++j) {
      const bool apart = wire::seq_before(ranges[i].seq + ranges[i].len, ranges[j].seq) ||
                         wire::seq_before(ranges[j].seq + ranges[j].len, ranges[i].seq);
      EXPECT_TRUE(apart) << "probes " << i << " and " << j;
    }
  // First pass: the first window's 16 TTLs once; second: two more for TTLs 1..4.
  EXPECT_EQ(net.sent_probes_.size(), 16u + 8u);
  // Duplicates reaching the peer: TTL 4..16 once, then two more at TTL 4.
  EXPECT_EQ(net.peer_dups_received, 13 + 2);
}

TEST(DupTrace, APathLongerThanTheFirstWindowIsFollowedToItsEnd) {
  Path path;
  for (int i = 1; i <= 22; ++i) path.routers.push_back("10.0." + std::to_string(i) + ".1");
  path.silent = {16, 17};  // silence right at the window's edge
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(400, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 23u);
  EXPECT_EQ(addrs(t.hops[21]).front(), "10.0.22.1");
  EXPECT_TRUE(t.hops[16].replies.empty());
}

TEST(DupTrace, AWindowAsWideAsMaxTtlProbesEveryTtlAtOnce) {
  auto c = config();
  c.trace.first_window = 30;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 0ms, 1000);  // room for 30 probes of up to 16 bytes
  EXPECT_EQ(net.sent_probes_.size(), 30u);
}

TEST(DupTrace, SilentHopStaysEmptyAndCostsOneTimeout) {
  Path path = three_routers();
  path.silent = {2};
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(300, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_TRUE(t.hops[1].replies.empty());
  EXPECT_EQ(t.hops[1].probes_sent, 3);
  EXPECT_EQ(addrs(t.hops[2]), std::vector<std::string>(3, "10.0.3.1"));
  EXPECT_LE(t.end.mono - t.start.mono, 1s + 50ms);
}

TEST(DupTrace, ReorderedRepliesAreAttributedToTheirOwnProbes) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 0ms);
  net.reverse_in_flight();  // TTL 3's reply now comes first, TTL 1's last
  net.stream(30, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  ASSERT_EQ(t.hops.size(), 4u);
  for (int ttl = 1; ttl <= 3; ++ttl)
    for (const auto& r : t.hops[static_cast<std::size_t>(ttl - 1)].replies)
      EXPECT_EQ(r.addr.to_string(), three_routers().routers[static_cast<std::size_t>(ttl - 1)]);
}

TEST(DupTrace, ASilentHopCostsRoundTripsNotTheTimeoutOnceLaterHopsAnswered) {
  Path path = three_routers();
  path.silent = {2};
  path.per_hop = 5ms;  // RTT 40 ms to the peer
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(100, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  EXPECT_TRUE(t.hops[1].replies.empty());
  EXPECT_EQ(t.hops[1].silent, core::Silence::inferred);
  // The destination answers in 40 ms; TTL 2 is taken for silent 3 round
  // trips (of the slowest reply) plus 10 ms after its first probe left. Its
  // repeats, in the second pass with the next packet, wait 2 round trips
  // from then: the whole trace takes 3 RTT + 10 ms + at most a packet gap
  // (the bound is 3 RTT + 50 ms).
  EXPECT_LE(t.end.mono - t.start.mono, 3 * 40ms + 10ms + 10ms);
  EXPECT_EQ(output::trace_json(t)["hops"][1]["silent"], "inferred");
}

TEST(DupTrace, NothingBeyondAnsweredStillWaitsTheTimeout) {
  Path path = three_routers();
  path.silent = {3};
  path.peer_answers = false;
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(400, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::gaplimit);
  EXPECT_EQ(net.traces[0].hops[2].silent, core::Silence::timeout);
  EXPECT_GE(net.traces[0].end.mono - net.traces[0].start.mono, 1s);
}

TEST(DupTrace, ALateReplyIsWrittenMarkedLateAndTheNextRoundWaitsForIt) {
  Path path = three_routers();
  path.slow_icmp[2] = 300ms;  // its ICMP comes 300 ms late: within --timeout
  auto c = config();
  c.trace.repeat = 2s;
  core::Engine engine(c);
  Network net(engine, path, client_flow());
  net.stream(100, 10ms);  // 1 s: round 1, and its late replies
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_TRUE(net.traces[0].hops[1].replies.empty()) << "taken for silent";
  EXPECT_EQ(net.traces[0].hops[1].silent, core::Silence::inferred);
  std::vector<core::HopEvent> late;
  for (const auto& h : net.hops)
    if (h.reply.late) late.push_back(h);
  ASSERT_EQ(late.size(), 3u) << "each probe's reply, as it came";
  for (const auto& h : late) {
    EXPECT_EQ(h.ttl, 2);
    EXPECT_EQ(h.round, 1u);
    EXPECT_EQ(h.reply.addr.to_string(), "10.0.2.1");
    EXPECT_EQ(output::hop_json(h)["late"], true);
  }
  EXPECT_EQ(engine.counters().icmp_late, 3u);
  // Round 2 waits long enough for that router.
  net.stream(300, 10ms);
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(net.traces[1].hops[1].replies.size(), 3u);
  EXPECT_EQ(net.traces[1].hops[1].silent, core::Silence::none);
}

// A busy Linux peer (the application holding the socket, its ACK deferred)
// keeps one D-SACK pending: each duplicate replaces it, so of a wave it
// names only the duplicate it took last.
TEST(DupTrace, APeerNamingOnlyAWavesLastDuplicateStillShowsTheDestinationInRoundTrips) {
  Path path = three_routers();
  path.peer_names_last_duplicate_only = true;
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(100, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  // Sent highest TTL first, a wave's last duplicate is its lowest TTL to
  // reach the peer: the destination's distance, not the window's edge.
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(t.hops[3].replies.size(), 2u) << "one D-SACK per wave";
  // The second pass's other duplicate at that TTL is never named: settled
  // after the silence margin, not at --timeout.
  EXPECT_LT(t.end.mono - t.start.mono, 100ms) << "not --timeout (1 s)";
}

// A data segment the peer takes before its ACK leaves clears the pending
// D-SACK (tcp_data_queue): that duplicate arrived and is never answered.
TEST(DupTrace, ADSackThePeerClearedCostsTheSilenceMarginNotTheTimeout) {
  Path path = three_routers();
  // TTLs 4..16 reach the peer in the first pass (its 13 duplicates), then
  // TTL 4 twice: the first of those two goes unanswered.
  path.dsacks_cleared = {14};
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(100, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(t.hops[3].probes_sent, 3);
  EXPECT_EQ(t.hops[3].replies.size(), 2u);
  EXPECT_EQ(t.hops[3].silent, core::Silence::none);
  EXPECT_LT(t.end.mono - t.start.mono, 100ms) << "not --timeout (1 s)";
}

// The client's flow along `path`, 100 packets 10 ms apart (1 s), and the
// engine tracing it with the default test config.
struct OneSecondOfFlow {
  core::Engine engine{config()};
  Network net;
  explicit OneSecondOfFlow(const Path& path) : net(engine, path, client_flow()) {
    net.stream(100, 10ms);
  }
  // Its one trace, reached, with the destination at `distance`.
  const core::TraceResult& reached(std::size_t distance) const {
    EXPECT_EQ(net.traces.size(), 1u);
    const core::TraceResult& t = net.traces.at(0);
    EXPECT_EQ(t.reason, StopReason::reached);
    EXPECT_EQ(t.hops.size(), distance);
    return t;
  }
  std::map<int, int> late_hops_by_ttl() const {
    std::map<int, int> late;
    for (const auto& h : net.hops)
      if (h.reply.late) ++late[h.ttl];
    return late;
  }
};

// On a busy host a whole wave's answers can come late. The first pass lost
// the D-SACKs of TTL 4 (the destination), 5 and 6, so TTL 7 looked like the
// destination; the second pass's D-SACKs then come 100 ms late. An answer
// to the first pass says nothing of how late the second's are: its
// unanswered TTLs are not taken for silent, and the late D-SACKs show the
// destination at 4.
TEST(DupTrace, AnEarlierWavesAnswersDoNotTakeALateWaveForSilent) {
  Path path = three_routers();
  // TTLs 16..4 reach the peer in the first pass, highest first: duplicates
  // 11, 12, 13 are TTL 6, 5, 4. The second pass (TTL 7..4, twice each) is
  // duplicates 14..21.
  path.dsacks_cleared = {11, 12, 13};
  for (int dup = 14; dup <= 21; ++dup) path.slow_dsacks[dup] = 100ms;
  const OneSecondOfFlow run(path);
  const auto& t = run.reached(4);  // not 7, with 4-6 silent
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_FALSE(t.hops[3].replies.empty());
  EXPECT_EQ(t.hops[3].silent, core::Silence::none);
  EXPECT_LT(t.end.mono - t.start.mono, 1s) << "the late D-SACKs end it, not --timeout";
}

// A wave none of whose higher TTLs answers (routers rate-limiting their
// ICMP, the peer's D-SACKs replaced) is taken for silent a quarter of
// --timeout after it left, not at --timeout.
TEST(DupTrace, AWaveWithoutHigherAnswersWaitsAQuarterOfTheTimeout) {
  Path path = three_routers();
  path.icmp_budget = {{2, 1}, {3, 1}};  // the first pass's probe only
  path.dsacks_cleared = {14, 15};       // the second pass's duplicates (TTL 4)
  const OneSecondOfFlow run(path);
  const auto& t = run.reached(4);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(t.hops[1].replies.size(), 1u);
  EXPECT_GE(t.end.mono - t.start.mono, 250ms);
  EXPECT_LT(t.end.mono - t.start.mono, 400ms) << "not --timeout (1 s)";
}

// A D-SACK for a probe taken for silent, after its round ended (within
// --timeout), is written at once as a late hop reply, as a late ICMP one.
TEST(DupTrace, ALateDSackIsWrittenMarkedLate) {
  Path path = three_routers();
  // The second pass sends TTL 4 twice (duplicates 14 and 15): the D-SACK
  // for the second comes 300 ms late.
  path.slow_dsacks[15] = 300ms;
  const OneSecondOfFlow run(path);
  const auto& t = run.reached(4);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(t.hops[3].replies.size(), 2u) << "the third came after the round";
  std::vector<core::HopEvent> late;
  for (const auto& h : run.net.hops)
    if (h.reply.late) late.push_back(h);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].ttl, 4);
  EXPECT_EQ(late[0].round, 1u);
  EXPECT_EQ(late[0].reply.kind, core::ReplyKind::destination);
  EXPECT_GE(late[0].reply.rtt, 300ms);
  EXPECT_EQ(output::hop_json(late[0])["late"], true);
  EXPECT_EQ(run.engine.counters().peer_late, 1u);
}

// Beyond the destination a late D-SACK only confirms the trace: no hop line
// showing the destination further than its trace did.
TEST(DupTrace, ALateDSackBeyondTheDestinationWritesNoHop) {
  Path path = three_routers();
  // The first pass's duplicates: TTL 16 first, TTL 5 twelfth, TTL 4 last;
  // the second pass's (TTL 4 twice) answered 60 ms late, so that the round
  // lasts till TTL 5 is taken for silent.
  path.slow_dsacks = {{12, 300ms}, {14, 60ms}, {15, 60ms}};
  const OneSecondOfFlow run(path);
  run.reached(4);
  EXPECT_EQ(run.late_hops_by_ttl(), (std::map<int, int>{{4, 2}})) << "TTL 4's two, none at 5";
}

// A busy peer may leave most of a round's duplicates unnamed (its ACKs
// deferred, the D-SACK pending replaced). Here the first pass's answer from
// TTL 4 (the destination) is lost and TTL 5's named, so the destination
// looks one further; of the second pass, one TTL 5 probe is named and none
// of TTL 4's. Of the duplicates beyond TTL 4, 2 of 14 were named: TTL 4's
// three going unanswered is no evidence of a silent router. It is asked
// again (with TTL 5) before it is written silent, and answers.
TEST(DupTrace, ATtlBelowADestinationThatAnsweredFewIsAskedAgainBeforeItIsSilent) {
  Path path = three_routers();
  // Duplicates 1..13 are the first pass's TTL 16..4 (only TTL 5's, 12,
  // named); 14, 15 the second pass's TTL 5 (15 named), 16, 17 its TTL 4.
  for (int dup = 1; dup <= 17; ++dup)
    if (dup != 12 && dup != 15) path.dsacks_cleared.insert(dup);
  const OneSecondOfFlow run(path);
  const auto& t = run.reached(4);  // not 5, with 4 silent
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_FALSE(t.hops[3].replies.empty());
  EXPECT_EQ(t.hops[3].silent, core::Silence::none);
  EXPECT_EQ(t.hops[3].probes_sent, 6) << "one more batch";
  EXPECT_LT(t.end.mono - t.start.mono, 1s) << "not --timeout";
}

// A silent router right below a destination that answers few of its
// duplicates: asked twice more at most, then written silent. Below one that
// answers them all, its --ttlrepeat probes are enough.
TEST(DupTrace, ASilentRouterBelowTheDestinationCostsMoreProbesOnlyWhenThePeerAnswersFew) {
  for (const bool answers_few : {true, false}) {
    SCOPED_TRACE(answers_few ? "the peer names one duplicate" : "the peer names them all");
    Path path = three_routers();
    path.silent = {3};
    if (answers_few) {
      for (int dup = 1; dup <= 100; ++dup)
        if (dup != 13) path.dsacks_cleared.insert(dup);  // the first pass's TTL 4
    }
    const OneSecondOfFlow run(path);
    const auto& t = run.reached(4);
    ASSERT_EQ(t.hops.size(), 4u);
    EXPECT_EQ(t.hops[2].silent, core::Silence::inferred);
    EXPECT_EQ(t.hops[2].probes_sent, answers_few ? 9 : 3);
    EXPECT_LT(t.end.mono - t.start.mono, 1s) << "not --timeout";
  }
}

// A copy read late (the connection went on sending meanwhile) has an older
// timestamp than the peer last saw: the peer would discard probes with it
// (PAWS). They carry the newest TSval the peer echoed instead; an echo far
// ahead of the sender's clock (forged) is not believed.
TEST(DupTrace, ProbesFromALateCopyCarryTheNewestTimestampThePeerEchoed) {
  struct Case {
    std::optional<std::uint32_t> echoed;
    std::uint32_t want;
  };
  for (const Case& c : {Case{1005, 1005}, Case{90000, 1001}, Case{std::nullopt, 1001}}) {
    SCOPED_TRACE(testing::Message() << "echo " << c.echoed.value_or(0));
    core::Engine engine(config());
    Network net(engine, three_routers(), client_flow());
    auto data = [&](std::uint32_t tsval) {
      testpkt::Tcp t = net.flow();
      t.options = {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 7};
      wire::store32(wire::MutableBytes(t.options), 4, tsval);
      t.payload.assign(200, 'd');
      net.send(t);
      net.flow().seq += 200;
    };
    auto tsvals_from = [&](std::size_t first) {
      std::set<std::uint32_t> out;
      for (std::size_t i = first; i < net.sent_probes_.size(); ++i) {
        const auto& b = net.sent_probes_[i];
        auto p = wire::parse_tcp_packet(wire::Bytes(b), static_cast<std::uint32_t>(b.size()));
        auto ts = wire::parse_timestamps(p->options());
        out.insert(ts ? ts->val : 0);
      }
      return out;
    };
    data(1000);
    ASSERT_FALSE(net.sent_probes_.empty());
    EXPECT_EQ(tsvals_from(0), std::set<std::uint32_t>{1000});
    net.advance(20ms);  // the first wave's answers are in
    if (c.echoed) {
      testpkt::Tcp ack = from_peer(net, 0x10, net.flow().ack);
      ack.ack = net.flow().seq;
      ack.options = testpkt::sack_option(net.flow().seq + 5000, net.flow().seq + 6000);
      ack.options.insert(ack.options.end(), {1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0});
      wire::store32(wire::MutableBytes(ack.options), ack.options.size() - 4, *c.echoed);
      net.peer_sends(ack);
    }
    // Copies of packets stamped 19 ms before, till the next wave
    // (--packetfreq apart).
    const std::size_t before = net.sent_probes_.size();
    for (int i = 0; i < 10 && net.sent_probes_.size() == before; ++i) data(1001);
    ASSERT_GT(net.sent_probes_.size(), before) << "the round's next wave";
    EXPECT_EQ(tsvals_from(before), std::set<std::uint32_t>{c.want});
  }
}

TEST(DupTrace, RoutersQuotingTheWholeProbeMatchToo) {
  Path path = three_routers();
  path.quote_bytes = 1000;  // RFC 1812 routers quote as much as fits
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::reached);
  EXPECT_EQ(net.traces[0].hops[0].replies.size(), 3u);
}

TEST(DupTrace, IcmpThatQuotesNoProbeIsCountedAndIgnored) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 0ms);
  // A time-exceeded quoting the flow's 5-tuple but a guessed sequence number.
  testpkt::Tcp forged = client_flow();
  forged.seq = 123456;
  forged.payload = {1};
  net.inject_icmp(testpkt::icmp_error(testpkt::ip_packet(forged), "203.0.113.66", 8));
  // And one for a flow nobody traces.
  net.inject_icmp(testpkt::icmp_error(testpkt::ip_packet(other_flow(1)), "203.0.113.66", 8));
  EXPECT_EQ(engine.counters().icmp_no_probe, 1u);
  EXPECT_EQ(engine.counters().icmp_no_flow, 1u);
  // A genuine reply that comes twice (replayed) counts once.
  const auto genuine = std::find_if(net.in_flight().begin(), net.in_flight().end(),
                                    [](const sim::Pending& p) { return p.icmp; });
  ASSERT_NE(genuine, net.in_flight().end());
  const testpkt::Buf replay = genuine->bytes;
  net.advance(20ms);
  const auto matched = engine.counters().icmp_matched;
  net.inject_icmp(replay);
  EXPECT_EQ(engine.counters().icmp_matched, matched);
  EXPECT_EQ(engine.counters().icmp_repeated, 1u);
  EXPECT_EQ(engine.counters().icmp_unmatched(), 3u);
  net.stream(30, 10ms);
  for (const auto& h : net.hops) EXPECT_NE(h.reply.addr.to_string(), "203.0.113.66");
}

TEST(DupTrace, ASecondReplyToTheSameProbeIsNotCountedTwice) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 0ms);
  const auto first = *std::find_if(net.sent_probes_.begin(), net.sent_probes_.end(),
                                   [](const testpkt::Buf& b) { return b[8] == 1; });  // TTL 1
  net.advance(3ms);
  // TTL 1's reply came back (RTT 2 ms; TTL 2's is due at 4 ms) and was matched.
  const auto matched = [](const core::HopEvent& h) {
    return h.ttl == 1 && h.reply.addr.to_string() == "10.0.1.1";
  };
  ASSERT_EQ(std::count_if(net.hops.begin(), net.hops.end(), matched), 1);
  ASSERT_EQ(engine.counters().icmp_matched, 1u);
  ASSERT_EQ(engine.counters().icmp_repeated, 0u);
  // The same reply again: no second hop, counted as repeated.
  net.inject_icmp(testpkt::icmp_error(first, "10.0.1.1", 8));
  EXPECT_EQ(std::count_if(net.hops.begin(), net.hops.end(), matched), 1);
  EXPECT_EQ(engine.counters().icmp_matched, 1u);
  EXPECT_EQ(engine.counters().icmp_repeated, 1u);
}

TEST(DupTrace, SilentPeerEndsAtTheGapLimit) {
  Path path = three_routers();
  path.peer_answers = false;
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(400, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::gaplimit);
  EXPECT_FALSE(t.reached);
  ASSERT_EQ(t.hops.size(), 3u + 5u);
  for (std::size_t i = 3; i < 8; ++i) EXPECT_TRUE(t.hops[i].replies.empty());
}

TEST(DupTrace, PathLongerThanMaxTtlEndsAtMaxTtl) {
  auto c = config();
  c.trace.max_ttl = 2;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  net.stream(400, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::maxttl);
  EXPECT_EQ(net.traces[0].hops.size(), 2u);
  for (const auto& b : net.sent_probes_) EXPECT_LE(b[8], 2);
}

TEST(DupTrace, CloseMidTraceYieldsThePartialTrace) {
  Path path = three_routers();
  path.silent = {3};
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(1, 9ms);  // the first pass is out, the destination has answered
  send_fin(net);
  const auto probes_before = net.sent_probes_.size();
  net.advance(2s);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::closed);
  EXPECT_TRUE(t.reached);  // the destination had answered before the close
  EXPECT_GE(t.hops.size(), 2u);
  EXPECT_EQ(addrs(t.hops[0]).front(), "10.0.1.1");
  EXPECT_EQ(net.sent_probes_.size(), probes_before);  // nothing after the FIN
  // The last packets of the close start no new trace; then the state goes.
  net.stream(3, 10ms);
  EXPECT_EQ(net.sent_probes_.size(), probes_before);
  EXPECT_EQ(engine.counters().traces_started, 1u);
  net.advance(11s);  // its linger: 10 s, and twice the last gap
  EXPECT_EQ(engine.flow_count(), 0u);
}

// The connection's FIN may leave before the peer's D-SACKs for the probes
// of its last wave come back (a short transfer's end): they still answer
// them, and the destination shows at its own distance.
TEST(DupTrace, DSacksArrivingAfterTheCloseStillAnswerTheRoundsProbes) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 1ms);  // the first pass is out, nothing has answered yet
  send_fin(net);
  net.advance(2s);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_TRUE(t.reached);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(t.hops[3].replies.size(), 1u);
  EXPECT_EQ(t.hops[3].replies[0].kind, core::ReplyKind::destination);
  EXPECT_EQ(addrs(t.hops[2]).front(), "10.0.3.1");
}

// The connection closes while the second pass is out, and the peer's socket
// is gone when it arrives: its duplicates get RSTs, never D-SACKs. The TTL
// whose first-pass D-SACK was lost (the destination's own) is then no silent
// router: the round ends `closed`, not `reached` one hop too far.
TEST(DupTrace, APeerResetCuttingOffTheAnswersEndsTheRoundClosedNotReachedTooFar) {
  Path path = three_routers();
  path.dsacks_cleared = {13};  // the first pass's TTL 4, the 13th duplicate to arrive
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(1, 20ms);  // the first pass: the destination named at TTL 5
  net.path().peer_answers = false;  // closed: the second pass gets no D-SACK
  net.stream(1, 1ms);
  send_fin(net);
  net.peer_sends(from_peer(net, 0x04, net.flow().ack));
  net.advance(2s);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::closed);
  EXPECT_TRUE(t.reached);
  ASSERT_EQ(t.hops.size(), 5u);
  EXPECT_TRUE(t.hops[3].replies.empty());
  EXPECT_EQ(t.hops[3].silent, core::Silence::none) << "no claim of a silent router";
}

TEST(DupTrace, AResetOffThePeersSequenceEndsNothing) {
  auto path = three_routers();
  path.silent = {2};
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(1, 0ms);
  // Forged: right addresses and ports, a guessed sequence number.
  for (std::uint32_t guess : {0u, 1u << 20, 0x80000000u, net.flow().ack - 1})
    net.peer_sends(from_peer(net, 0x04, guess));
  EXPECT_EQ(engine.counters().peer_resets_rejected, 4u);
  net.stream(200, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::reached);
}

TEST(DupTrace, APeersFinEndsOnlyItsHalfAndTracingGoesOn) {
  auto path = three_routers();
  path.silent = {2};
  core::Engine engine(config());
  Network net(engine, path, client_flow());
  net.stream(1, 0ms);
  net.peer_sends(from_peer(net, 0x11, net.flow().ack));
  net.flow().ack += 1;  // our stack acknowledges the FIN, and sends on
  net.stream(200, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::reached);
}

TEST(DupTrace, ANewConnectionOnTheSamePortsIsTracedAfresh) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(20, 10ms);
  send_fin(net);
  net.advance(1s);  // well within the close's linger
  testpkt::Tcp syn = net.flow();
  syn.flags = 0x02;
  net.flow().seq = 777777;
  syn.seq = net.flow().seq - 1;
  net.send(syn);
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(net.traces[1].reason, StopReason::reached);
  EXPECT_EQ(net.traces[1].round, 1u);
}

TEST(DupTrace, PeerResetEndsTheFlow) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 0ms);
  // At the sequence number the flow acknowledged last: the peer's own.
  net.peer_sends(from_peer(net, 0x04, net.flow().ack));
  net.advance(2s);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::closed);
  net.advance(10s);
  EXPECT_EQ(engine.flow_count(), 0u);
}

TEST(DupTrace, DownloadClientThatOnlyAcksProbesWithBytesItSentEarlier) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  testpkt::Tcp request = net.flow();
  request.payload.assign(80, 'G');  // "GET ..." before the download
  net.send(request);
  // The trace started on the request; see it through with pure ACKs only.
  net.flow().seq += 80;
  send_download_acks(net, 50);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::reached);
  EXPECT_EQ(net.traces[0].hops.size(), 4u);
  EXPECT_EQ(net.traces[0].hops[3].replies.size(), 3u);
}

TEST(DupTrace, FlowThatNeverSentDataReachesThePeerWithBytesBelowItsSequence) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  send_download_acks(net, 50);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(addrs(t.hops[2]), std::vector<std::string>(3, "10.0.3.1"));
  EXPECT_EQ(t.hops[3].replies.size(), 3u);
  // Each probe holds sequence space the peer already has: all of it below
  // the flow's sequence number.
  for (const auto& b : net.sent_probes_) {
    auto p = wire::parse_tcp_packet(wire::Bytes(b), static_cast<std::uint32_t>(b.size()));
    ASSERT_TRUE(p);
    EXPECT_GE(p->payload_len, 1u);
    EXPECT_FALSE(wire::seq_before(client_flow().seq, p->seq + p->payload_len));
  }
}

TEST(DupTrace, NoProbeAfterTheTraceEndedAndRepeatStartsANewRound) {
  auto c = config();
  c.trace.repeat = 2s;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto probes = net.sent_probes_.size();
  net.stream(100, 10ms);  // still within 2 s of the round's start
  EXPECT_EQ(net.sent_probes_.size(), probes);
  net.stream(150, 10ms);
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(net.traces[1].round, 2u);
  EXPECT_EQ(net.traces[1].reason, StopReason::reached);
}

TEST(DupTrace, MaxFlowsCapsConcurrentTraces) {
  auto c = config();
  c.max_flows = 1;
  core::Engine engine(c);
  Network a(engine, three_routers(), client_flow());
  Network b(engine, three_routers(), other_flow(50000));
  a.stream(1, 0ms);
  b.stream(1, 0ms);
  EXPECT_EQ(engine.running_traces(), 1u);
  EXPECT_EQ(engine.counters().flows_refused, 1u);
  EXPECT_TRUE(b.sent_probes_.empty());
}

TEST(DupTrace, StopEndsRunningTracesWithReasonStopped) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 0ms);
  const auto probes = net.sent_probes_.size();
  engine.stop(sim::at(5ms));
  sim::drain(engine);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::stopped);
  net.stream(5, 10ms);
  EXPECT_EQ(net.sent_probes_.size(), probes);  // nothing after stop
}

TEST(DupTrace, IdleFlowIsClosedAndForgotten) {
  auto c = config();
  c.idle_timeout = 5s;
  c.trace.repeat = 1s;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  net.stream(20, 10ms);
  EXPECT_EQ(engine.flow_count(), 1u);
  net.advance(6s);
  EXPECT_EQ(engine.flow_count(), 0u);
  EXPECT_FALSE(engine.poll_timeout().has_value());
}

TEST(DupTrace, EveryOutgoingPacketGetsAnAcceptVerdictUnchanged) {
  core::Engine engine(config());
  Network net(engine, three_routers(), client_flow());
  for (int i = 0; i < 50; ++i) {
    testpkt::Tcp t = net.flow();
    t.payload.assign(100, 'z');
    EXPECT_FALSE(net.send(t).set_ttl.has_value());
    net.flow().seq += 100;
  }
}

TEST(MangleTrace, LowersTtlOfOriginalsUpwardsAndSeesTheDestinationDeliverOne) {
  core::Engine engine(mangle_config(2));
  Network net(engine, three_routers(), client_flow());
  net.stream(200, 5ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_EQ(addrs(t.hops[0]), std::vector<std::string>(3, "10.0.1.1"));
  EXPECT_EQ(t.hops[3].replies.front().kind, core::ReplyKind::destination);
  // Upwards, three per TTL, never beyond the destination.
  ASSERT_GE(net.mangled_.size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(net.mangled_[i], 1 + i / 3);
  for (auto ttl : net.mangled_) EXPECT_LE(ttl, 4 + 1);
}

// Two routers that never answer: an original mangled to TTL 1 dies unseen.
Path two_silent_routers() {
  Path path;
  path.routers = {"10.0.1.1", "10.0.2.1"};
  path.silent = {1, 2};
  return path;
}

// The flow's first 100 bytes, which mangle mode sends at TTL 1.
testpkt::Tcp send_first_mangled(Network& net) {
  testpkt::Tcp first = net.flow();
  first.payload.assign(100, 'a');
  EXPECT_EQ(net.send(first).set_ttl, 1);
  return first;
}

TEST(MangleTrace, RetransmittedOriginalIsNoEvidenceOfDelivery) {
  core::Engine engine(mangle_config(100));
  // The mangled packet dies silently at TTL 1; the sender resends it; the
  // peer's ACK for the resent bytes must not pass for the probe's delivery.
  Network net(engine, two_silent_routers(), client_flow());
  const testpkt::Tcp first = send_first_mangled(net);
  testpkt::Tcp resend = first;
  resend.ip_id++;
  ASSERT_FALSE(net.send(resend).set_ttl.has_value());
  testpkt::Tcp ack = from_peer(net, 0x10, net.flow().ack);
  ack.ack = first.seq + 100;
  net.peer_sends(ack);
  EXPECT_TRUE(net.hops.empty());
  EXPECT_EQ(engine.counters().peer_evidence, 0u);
}

// After the connection's FIN its packets are not followed (a closing flow's
// are not): an original resent then is not seen resent, so the peer's ACK
// past it is no evidence, though the round still runs.
TEST(MangleTrace, AnAckAfterTheCloseIsNoEvidenceOfDelivery) {
  core::Engine engine(mangle_config(100));
  Network net(engine, two_silent_routers(), client_flow());
  const testpkt::Tcp first = send_first_mangled(net);
  net.flow().seq += 100;
  send_fin(net);  // the mangled original, dead at TTL 1, is resent after this
  testpkt::Tcp ack = from_peer(net, 0x10, net.flow().ack);
  ack.ack = first.seq + 101;  // its bytes and the FIN
  net.peer_sends(ack);
  EXPECT_TRUE(net.hops.empty());
  EXPECT_EQ(engine.counters().peer_evidence, 0u);
}

TEST(MangleTrace, DeliveredOriginalIsEvidenceOfTheDestination) {
  core::Engine engine(mangle_config(100));
  Path path;  // the peer is one hop away
  Network net(engine, path, client_flow());
  testpkt::Tcp first = net.flow();
  first.payload.assign(100, 'a');
  ASSERT_EQ(net.send(first).set_ttl, 1);
  net.advance(5ms);
  ASSERT_EQ(net.hops.size(), 1u);
  EXPECT_EQ(net.hops[0].reply.kind, core::ReplyKind::destination);
  EXPECT_EQ(net.hops[0].reply.rtt, 2ms);
}

namespace {

// As the server runs it: only the flows its clients ask for are traced.
core::FlowFilter requested_only() {
  core::FlowFilter filter;
  filter.requested_only = true;
  return filter;
}

using sim::key_of;

}  // namespace

TEST(RequestedTraces, OnlyRequestedFlowsAreTracedWithTheirOwnParameters) {
  core::Engine engine(config(), requested_only());
  Network asked(engine, three_routers(), client_flow());
  Network unasked(engine, three_routers(), other_flow(50001));

  auto own = config();
  own.trace.ttl_repeat = 1;
  own.trace.max_ttl = 8;
  engine.request_trace(key_of(asked.flow()), own.trace, sim::at(0ms));
  asked.stream(20, 10ms);
  unasked.stream(20, 10ms);

  EXPECT_TRUE(unasked.sent_probes_.empty());
  EXPECT_EQ(engine.flow_count(), 1u);
  ASSERT_EQ(asked.traces.size(), 1u);
  EXPECT_EQ(asked.traces[0].reason, StopReason::reached);
  EXPECT_EQ(asked.sent_probes_.size(), 8u);  // TTLs 1..8 once each
  for (const auto& hop : asked.traces[0].hops) EXPECT_EQ(hop.replies.size(), 1u);
}

// nfqtrace-server --forward: a connection this host forwards has no
// cooperating client to ask for its trace: it is traced unasked, with the
// default parameters, while the server's own connections still wait to be
// asked. Without the option it is left alone like any unasked one.
TEST(RequestedTraces, AForwardedConnectionIsTracedUnaskedWhenTheFilterSaysSo) {
  for (const bool unasked_ok : {true, false}) {
    core::FlowFilter filter = requested_only();
    filter.forwarded_unasked = unasked_ok;
    core::Engine engine(config(), filter);
    Network own(engine, three_routers(), other_flow(50010));
    Network forwarded(engine, three_routers(), other_flow(50011));
    forwarded.forwarded = true;
    own.stream(20, 10ms);
    forwarded.stream(20, 10ms);
    EXPECT_TRUE(own.sent_probes_.empty()) << "the server's own connection, not asked for";
    if (!unasked_ok) {
      EXPECT_TRUE(forwarded.sent_probes_.empty());
      EXPECT_EQ(engine.flow_count(), 0u);
      continue;
    }
    ASSERT_EQ(forwarded.traces.size(), 1u);
    EXPECT_EQ(forwarded.traces[0].reason, StopReason::reached);
    EXPECT_EQ(forwarded.traces[0].hops.back().ttl, 4u);
  }
}

TEST(RequestedTraces, ForgettingAFlowEndsItsTraceAsClosed) {
  core::Engine engine(config(), requested_only());
  Path path = three_routers();
  path.silent = {2};
  Network net(engine, path, client_flow());
  const core::FlowKey key = key_of(net.flow());
  engine.request_trace(key, config().trace, sim::at(0ms));
  net.stream(1, 20ms);
  engine.forget(key, sim::at(net.now()));
  sim::drain(engine);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::closed);
  EXPECT_EQ(engine.flow_count(), 0u);
  EXPECT_EQ(engine.running_traces(), 0u);
}

namespace {

core::EngineConfig skip_finished_config() {
  auto c = config();
  c.skip_marks = true;
  return c;
}

using sim::Marking;

void answer(core::Engine& engine, const core::SkipChange& change, Marking how,
            core::Duration now) {
  sim::answer_skip(engine, change, how, now);
}

// The one mark change the engine asks for now, taken off its list; nullopt
// (and a failure) unless exactly one is pending.
std::optional<core::SkipChange> take_the_skip_change(core::Engine& engine) {
  auto& pending = sim::pending_skips(engine);
  EXPECT_EQ(pending.size(), 1u);
  if (pending.size() != 1) return std::nullopt;
  const core::SkipChange change = pending[0];
  pending.clear();
  return change;
}

// The flow's whole trace, then the runtime's answer to the engine's request
// to mark the finished flow. Call under ASSERT_NO_FATAL_FAILURE.
void trace_and_answer_the_skip(core::Engine& engine, Network& net, Marking how) {
  net.stream(20, 10ms);
  const auto change = take_the_skip_change(engine);
  ASSERT_TRUE(change);
  answer(engine, *change, how, net.now());
}

// Answers every pending skip change as the runtime would (all succeed).
std::vector<core::SkipChange> apply_skips(core::Engine& engine, core::Duration now) {
  std::vector<core::SkipChange> applied = std::move(sim::pending_skips(engine));
  sim::pending_skips(engine).clear();
  for (const core::SkipChange& c : applied) answer(engine, c, Marking::done, now);
  return applied;
}

}  // namespace

TEST(SkipFinishedFlows, AFlowWhoseTraceIsOverLeavesTheQueueAndItsStateGoesWithItsConnection) {
  auto c = skip_finished_config();
  c.idle_timeout = 5s;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  const auto change = take_the_skip_change(engine);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->skip, core::Skip::all);
  EXPECT_EQ(change->flow.sport, client_flow().sport);
  answer(engine, *change, Marking::done, net.now());
  EXPECT_EQ(engine.counters().flows_skipped, 1u);
  // A packet queued before the mark took effect finds the flow done.
  const auto probes = net.sent_probes_.size();
  net.stream(1, 10ms);
  EXPECT_EQ(net.sent_probes_.size(), probes);
  EXPECT_EQ(net.traces.size(), 1u);
  // Unseen while skipping is not idleness: the engine asks whether the
  // connection is still there, and keeps the flow while it is.
  net.advance(6s);
  auto recheck = take_the_skip_change(engine);
  ASSERT_TRUE(recheck);
  EXPECT_TRUE(recheck->skipping() && recheck->recheck);
  answer(engine, *recheck, Marking::done, net.now());
  EXPECT_EQ(engine.flow_count(), 1u);
  EXPECT_EQ(engine.counters().flows_skipped, 1u);
  net.advance(5s);
  recheck = take_the_skip_change(engine);
  ASSERT_TRUE(recheck);
  answer(engine, *recheck, Marking::connection_gone, net.now());
  EXPECT_EQ(engine.flow_count(), 0u);
  EXPECT_TRUE(sim::pending_skips(engine).empty());  // a gone connection has no mark
}

TEST(SkipFinishedFlows, ItsCloseClearsTheMarkSoANewConnectionOnItsPortsIsTraced) {
  core::Engine engine(skip_finished_config());
  Network net(engine, three_routers(), client_flow());
  ASSERT_NO_FATAL_FAILURE(trace_and_answer_the_skip(engine, net, Marking::done));
  // Its FIN still comes through the queue (the rules let it).
  send_fin(net);
  const auto clear = take_the_skip_change(engine);
  ASSERT_TRUE(clear);
  EXPECT_FALSE(clear->skipping());
  EXPECT_EQ(clear->flow.sport, client_flow().sport);
  net.advance(1s);
  send_syn(net);
  net.stream(20, 10ms);
  EXPECT_EQ(net.traces.size(), 2u);
}

TEST(SkipFinishedFlows, ASynOnTheMarkedPortsClearsTheMarkAndTracesAfresh) {
  core::Engine engine(skip_finished_config());
  Network net(engine, three_routers(), client_flow());
  ASSERT_NO_FATAL_FAILURE(trace_and_answer_the_skip(engine, net, Marking::done));
  // Its end was missed (a reset we could not check): conntrack reuses the
  // entry, mark and all, for the next connection.
  send_syn(net);
  const auto clear = take_the_skip_change(engine);
  ASSERT_TRUE(clear);
  EXPECT_FALSE(clear->skipping());
  // Whatever conntrack answers (the old entry may be gone), the new flow stays.
  answer(engine, *clear, Marking::connection_gone, net.now());
  net.stream(20, 10ms);
  EXPECT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(engine.flow_count(), 1u);
}

TEST(SkipFinishedFlows, WhenSkippingFailsTheFlowStaysDoneAndIsNotTracedAgain) {
  core::Engine engine(skip_finished_config());
  Network net(engine, three_routers(), client_flow());
  ASSERT_NO_FATAL_FAILURE(trace_and_answer_the_skip(engine, net, Marking::failed));
  const auto probes = net.sent_probes_.size();
  net.stream(50, 10ms);
  EXPECT_EQ(net.sent_probes_.size(), probes);
  EXPECT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(engine.flow_count(), 1u);
}

TEST(SkipFinishedFlows, WithRepeatTheFlowComesBackForItsNextRound) {
  auto c = skip_finished_config();
  c.trace.repeat = 2s;
  c.idle_timeout = 1s;  // shorter than the pause: skipping is not idleness
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  ASSERT_NO_FATAL_FAILURE(trace_and_answer_the_skip(engine, net, Marking::done));
  net.advance(2500ms);  // no packets reach the engine meanwhile
  std::vector<core::SkipChange> unskips;
  for (const core::SkipChange& change : apply_skips(engine, net.now()))
    if (!change.recheck) unskips.push_back(change);
  ASSERT_EQ(unskips.size(), 1u);
  EXPECT_FALSE(unskips[0].skipping());
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(net.traces[1].round, 2u);
}

TEST(SkipFinishedFlows, AConnectionThatIsGoneIsForgotten) {
  auto c = skip_finished_config();
  c.trace.repeat = 1s;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  ASSERT_NO_FATAL_FAILURE(trace_and_answer_the_skip(engine, net, Marking::connection_gone));
  EXPECT_EQ(engine.flow_count(), 0u);
}

TEST(ProbePacing, AWaveBeyondTheBudgetWaitsForLaterPacketsAndTheTraceStillEnds) {
  auto c = config();
  c.probes_per_second = 200;
  c.probe_burst = 10;
  core::Engine engine(c);
  Network net(engine, three_routers(), client_flow());
  net.stream(1, 10ms);
  EXPECT_EQ(net.sent_probes_.size(), 10u);  // the burst, lowest TTLs first
  for (const auto& b : net.sent_probes_) EXPECT_LE(b[8], 10);
  net.stream(300, 10ms);  // 2 more probes per 10 ms
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::reached);
  EXPECT_GT(engine.counters().probes_deferred, 0u);
  // Never faster than the rate allows, over the whole run.
  const double seconds = std::chrono::duration<double>(net.now()).count();
  EXPECT_LE(static_cast<double>(net.sent_probes_.size()), 10 + 200 * seconds);
}

TEST(Sampling, OnlyTheSampledFractionOfFlowsIsTracedAndAFlowStaysInOrOut) {
  auto c = config();
  c.sample = 0.25;
  c.probes_per_second = 0;  // no pacing here
  core::Engine engine(c);
  int traced = 0;
  for (std::uint16_t port = 1000; port < 1400; ++port) {
    Network net(engine, three_routers(), other_flow(port));
    net.stream(3, 1ms);
    const bool first = !net.sent_probes_.empty();
    net.stream(3, 1ms);
    traced += first;
    if (!first) {
      EXPECT_TRUE(net.sent_probes_.empty()) << "a flow left out stays out";
    }
  }
  EXPECT_GT(traced, 60);
  EXPECT_LT(traced, 140);
  EXPECT_EQ(engine.counters().flows_not_sampled, static_cast<std::uint64_t>(400 - traced));
}

TEST(MangleTrace, BareAcksAreNotProbesWhileTheFlowSendsData) {
  core::Engine engine(mangle_config(1));
  Network net(engine, three_routers(), client_flow());
  for (int i = 0; i < 200; ++i) {
    testpkt::Tcp data = net.flow();
    data.payload.assign(100, 'd');
    net.send(data);
    net.flow().seq += 100;
    testpkt::Tcp ack = net.flow();
    ack.flags = 0x10;
    EXPECT_FALSE(net.send(ack).set_ttl.has_value()) << "packet " << i;
    net.advance(5ms);
  }
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, StopReason::reached);
  EXPECT_EQ(net.traces[0].hops.size(), 4u);
}

TEST(MangleTrace, AFlowThatOnlyAcksIsProbedWithItsAcks) {
  core::Engine engine(mangle_config(1));
  Network net(engine, three_routers(), client_flow());
  for (int i = 0; i < 400; ++i) {
    testpkt::Tcp ack = net.flow();
    ack.flags = 0x10;
    ack.ip_id = static_cast<std::uint16_t>(i);  // IPv4 tells bare ACKs apart by their IP ID
    net.send(ack);
    net.advance(10ms);
  }
  ASSERT_EQ(net.traces.size(), 1u);
  const auto& t = net.traces[0];
  EXPECT_EQ(addrs(t.hops[0]), std::vector<std::string>(3, "10.0.1.1"));
  EXPECT_EQ(addrs(t.hops[2]), std::vector<std::string>(3, "10.0.3.1"));
  EXPECT_FALSE(t.reached);  // nothing shows an ACK reached the peer
}

namespace {

core::EngineConfig stop_set_config() {
  auto c = config();
  c.stop_set = 60s;
  return c;
}

}  // namespace

TEST(StopSet, ASecondFlowToTheSameDestinationProbesNearItAndTakesTheRestOverMarked) {
  core::Engine engine(stop_set_config());
  Network a(engine, three_routers(), client_flow());
  a.stream(20, 10ms);
  ASSERT_EQ(a.traces.size(), 1u);
  Network b(engine, three_routers(), other_flow(50000));
  b.stream(20, 10ms);
  ASSERT_EQ(b.traces.size(), 1u);
  const core::TraceResult& t = b.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  // TTLs 1 and 2 were not probed by b: they are a's, and say so.
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(t.hops[i].inferred_from) << "ttl " << i + 1;
    EXPECT_EQ(t.hops[i].inferred_from->flow, a.traces[0].flow);
    EXPECT_EQ(t.hops[i].inferred_from->round, 1u);
    EXPECT_EQ(addrs(t.hops[i]), addrs(a.traces[0].hops[i]));
  }
  EXPECT_FALSE(t.hops[2].inferred_from);
  EXPECT_EQ(addrs(t.hops[2]), std::vector<std::string>(3, "10.0.3.1"));
  EXPECT_EQ(t.hops[3].replies.front().kind, core::ReplyKind::destination);
  for (const auto& probe : b.sent_probes_) EXPECT_GE(probe[8], 3) << "probed below the start";
  EXPECT_LT(b.sent_probes_.size() * 3, a.sent_probes_.size());
  EXPECT_EQ(engine.counters().traces_from_stop_set, 1u);
}

TEST(StopSet, AFlowOnAnotherPathWalksBackUntilThePathsMeet) {
  core::Engine engine(stop_set_config());
  Network a(engine, three_routers(), client_flow());
  a.stream(20, 10ms);
  // A per-flow load balancer after the first router: b sees other routers
  // at TTLs 2 and 3.
  Path other = three_routers();
  other.routers = {"10.0.1.1", "10.9.2.1", "10.9.3.1"};
  Network b(engine, other, other_flow(50001));
  b.stream(100, 10ms);
  ASSERT_EQ(b.traces.size(), 1u);
  const core::TraceResult& t = b.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  // Its own routers at 2 and 3, found by walking back; TTL 1 met a's router
  // there, so nothing below it is taken over.
  EXPECT_EQ(addrs(t.hops[1]), std::vector<std::string>(3, "10.9.2.1"));
  EXPECT_EQ(addrs(t.hops[2]), std::vector<std::string>(3, "10.9.3.1"));
  EXPECT_EQ(addrs(t.hops[0]).front(), "10.0.1.1");
  for (const auto& hop : t.hops) EXPECT_FALSE(hop.inferred_from) << "ttl " << int{hop.ttl};
}

TEST(StopSet, ASilentHopAtTheStartCostsOneTimeoutAndTheWalkGoesOn) {
  core::Engine engine(stop_set_config());
  Path path = three_routers();
  path.silent = {3};
  Network a(engine, path, client_flow());
  a.stream(300, 10ms);
  ASSERT_EQ(a.traces.size(), 1u);
  Network b(engine, path, other_flow(50002));
  b.stream(300, 10ms);
  ASSERT_EQ(b.traces.size(), 1u);
  const core::TraceResult& t = b.traces[0];
  EXPECT_EQ(t.reason, StopReason::reached);
  ASSERT_EQ(t.hops.size(), 4u);
  EXPECT_TRUE(t.hops[0].inferred_from);   // below TTL 2, which met a's router
  EXPECT_FALSE(t.hops[1].inferred_from);
  EXPECT_TRUE(t.hops[2].replies.empty());
  EXPECT_LT(t.end.mono - t.start.mono, 2500ms);
}

TEST(StopSet, WhatIsOlderThanTheStopSetsLifetimeIsProbedAgainInFull) {
  auto c = stop_set_config();
  c.stop_set = 5s;
  core::Engine engine(c);
  Network a(engine, three_routers(), client_flow());
  a.stream(20, 10ms);
  Network b(engine, three_routers(), other_flow(50003));
  b.advance(6s);
  b.stream(20, 10ms);
  ASSERT_EQ(b.traces.size(), 1u);
  for (const auto& hop : b.traces[0].hops) EXPECT_FALSE(hop.inferred_from);
  EXPECT_EQ(b.sent_probes_.size(), a.sent_probes_.size());
  EXPECT_EQ(engine.counters().traces_from_stop_set, 0u);
}

TEST(StopSet, OffByDefault) {
  core::Engine engine(config());
  Network a(engine, three_routers(), client_flow());
  a.stream(20, 10ms);
  Network b(engine, three_routers(), other_flow(50004));
  b.stream(20, 10ms);
  EXPECT_EQ(b.sent_probes_.size(), a.sent_probes_.size());
  for (const auto& hop : b.traces.at(0).hops) EXPECT_FALSE(hop.inferred_from);
}

TEST(Admission, FlowsBeyondWhatThePpsBudgetServesWaitPastTheQueueAndComeBackInOrder) {
  auto c = skip_finished_config();
  c.probes_per_second = 64;  // with 1 s timeouts and 16-TTL waves: 4 traces at once
  c.probe_burst = 64;
  core::Engine engine(c);
  std::vector<std::unique_ptr<Network>> nets;
  for (std::uint16_t i = 0; i < 7; ++i)
    nets.push_back(std::make_unique<Network>(engine, three_routers(), other_flow(40000 + i)));
  for (auto& n : nets) n->stream(1, 1ms);
  EXPECT_EQ(engine.running_traces(), 4u);
  EXPECT_EQ(engine.counters().flows_refused, 3u);
  auto changes = apply_skips(engine, nets[0]->now());
  ASSERT_EQ(changes.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(changes[i].skip, core::Skip::all);
    EXPECT_EQ(changes[i].flow.sport, 40004 + i);
  }
  // Everyone goes on sending; the waiting flows' packets pass us by until
  // a place is free, and the first to wait is the first let back.
  std::vector<std::uint16_t> let_back;
  for (int step = 0; step < 600 && engine.counters().traces_ended < 7; ++step) {
    for (std::size_t i = 0; i < nets.size(); ++i) {
      const bool skipping = i >= 4 && std::find(let_back.begin(), let_back.end(),
                                                40000 + i) == let_back.end();
      if (skipping) {
        nets[i]->advance(10ms);
      } else {
        nets[i]->stream(1, 10ms);
      }
    }
    for (const core::SkipChange& ch : apply_skips(engine, nets[0]->now()))
      if (!ch.skipping() && ch.flow.sport >= 40004) let_back.push_back(ch.flow.sport);
  }
  EXPECT_EQ(let_back, (std::vector<std::uint16_t>{40004, 40005, 40006}));
  EXPECT_EQ(engine.counters().flows_waited_past, 3u);
  for (auto& n : nets) {
    ASSERT_EQ(n->traces.size(), 1u);
    EXPECT_EQ(n->traces[0].reason, StopReason::reached);
  }
}

TEST(Admission, WithoutSkippingAWaitingFlowIsTracedWhenAPlaceFrees) {
  auto c = config();
  c.max_flows = 1;
  core::Engine engine(c);
  Network a(engine, three_routers(), client_flow());
  Network b(engine, three_routers(), other_flow(50010));
  a.stream(1, 1ms);
  b.stream(1, 1ms);
  EXPECT_TRUE(sim::pending_skips(engine).empty());
  for (int i = 0; i < 100; ++i) {
    a.stream(1, 5ms);
    b.stream(1, 5ms);
  }
  ASSERT_EQ(a.traces.size(), 1u);
  ASSERT_EQ(b.traces.size(), 1u);
  EXPECT_EQ(b.traces[0].reason, StopReason::reached);
  EXPECT_EQ(engine.counters().flows_refused, 1u);
}

TEST(Admission, AWaitingFlowThatClosesGivesUpItsTurn) {
  auto c = skip_finished_config();
  c.max_flows = 1;
  core::Engine engine(c);
  Network a(engine, three_routers(), client_flow());
  Network b(engine, three_routers(), other_flow(50011));
  Network d(engine, three_routers(), other_flow(50012));
  a.stream(1, 1ms);
  b.stream(1, 1ms);
  d.stream(1, 1ms);
  apply_skips(engine, a.now());
  send_fin(b);  // its FIN still comes through the queue
  apply_skips(engine, a.now());
  for (int i = 0; i < 100; ++i) a.stream(1, 5ms);
  ASSERT_EQ(a.traces.size(), 1u);
  // b's turn went to d.
  const auto changes = apply_skips(engine, a.now());
  const auto let_back = [](std::uint16_t sport) {
    return [sport](const core::SkipChange& ch) { return ch.flow.sport == sport && !ch.skipping(); };
  };
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(), let_back(50012)), 1);
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(), let_back(50011)), 0);
  d.stream(30, 10ms);
  ASSERT_EQ(d.traces.size(), 1u);
  EXPECT_TRUE(b.traces.empty());
}

TEST(Admission, AFlowLetBackAfterALongWaitIsNotTakenForIdleBeforeItsNextPacket) {
  auto c = skip_finished_config();
  c.max_flows = 1;
  c.idle_timeout = 2s;
  c.trace.timeout = 3s;
  c.trace.ttl_repeat = 1;
  core::Engine engine(c);
  // Nothing answers beyond a's first hop: its trace waits its 3 s timeout
  // (a silence taken from later answers would end it sooner), and the
  // others wait with it.
  Path slow = three_routers();
  slow.silent = {2, 3};
  slow.peer_answers = false;
  Network a(engine, slow, client_flow());
  Network b(engine, three_routers(), other_flow(50020));
  Network d(engine, three_routers(), other_flow(50021));
  a.stream(1, 1ms);
  b.stream(1, 1ms);
  d.stream(1, 1ms);
  apply_skips(engine, a.now());
  EXPECT_EQ(engine.counters().flows_refused, 2u);
  // Only a sends (b and d pass us by) until 4.5 s; b is let back at ~3 s.
  while (a.now() < 4500ms) {
    a.stream(1, 20ms);
    apply_skips(engine, a.now());
  }
  ASSERT_EQ(a.traces.size(), 1u);
  b.advance(a.now() - b.now());
  b.stream(30, 10ms);
  ASSERT_EQ(b.traces.size(), 1u) << "b kept its place";
  EXPECT_EQ(engine.counters().flows_refused, 2u) << "nobody had to wait twice";
}
