// A flow's life in the engine, as its phases and the engine's decisions show
// it, and the small parts the engine is made of: the admission of traces and
// the probe budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nfqtrace/core/admission.hpp"
#include "nfqtrace/core/engine.hpp"
#include "nfqtrace/core/flow.hpp"
#include "nfqtrace/core/probe_budget.hpp"
#include "path_sim.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;
using core::Phase;
using sim::Network;

namespace {

sim::Path three_routers() {
  sim::Path p;
  p.routers = {"10.0.1.1", "10.0.2.1", "10.0.3.1"};
  return p;
}

testpkt::Tcp flow_from(std::uint16_t sport) {
  testpkt::Tcp t;
  t.sport = sport;
  t.flags = 0x18;
  return t;
}

core::EngineConfig skipping_with_repeat() {
  core::EngineConfig c;
  c.skip_marks = true;
  c.trace.repeat = 2s;
  return c;
}

// Where the first `kind` is in `decided` (its size if nowhere).
std::size_t first(const std::vector<std::string>& decided, const std::string& kind) {
  return static_cast<std::size_t>(std::find(decided.begin(), decided.end(), kind) -
                                  decided.begin());
}

void answer_all(core::Engine& engine, core::Duration now) {
  auto pending = std::move(sim::pending_skips(engine));
  sim::pending_skips(engine).clear();
  for (const auto& change : pending) sim::answer_skip(engine, change, sim::Marking::done, now);
}

}  // namespace

TEST(Lifecycle, AFlowIsFreshThenTracingThenRestingThenTracingAgainThenClosing) {
  core::Engine engine(skipping_with_repeat());
  Network net(engine, three_routers(), flow_from(40000));
  const core::FlowKey key = net.key();
  EXPECT_FALSE(engine.phase(key));
  testpkt::Tcp ack = net.flow();
  ack.flags = 0x10;
  ack.payload.clear();
  net.send(ack);  // a bare ACK before any data: the round starts, with old bytes
  EXPECT_EQ(engine.phase(key), Phase::tracing);
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(engine.phase(key), Phase::resting);
  answer_all(engine, net.now());
  net.advance(2s);  // its next round is due: it comes back through the queue
  answer_all(engine, net.now());
  EXPECT_EQ(engine.phase(key), Phase::resting);
  net.stream(1, 10ms);
  EXPECT_EQ(engine.phase(key), Phase::tracing);
  testpkt::Tcp fin = net.flow();
  fin.flags = 0x11;
  net.send(fin);
  EXPECT_EQ(engine.phase(key), Phase::closing);
  net.advance(12s);  // its probes expire, its round ends, it lingers, it goes
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(net.traces[1].reason, core::StopReason::closed);
  EXPECT_FALSE(engine.phase(key));
  EXPECT_EQ(engine.counters().illegal_transitions, 0u);
}

TEST(Lifecycle, AClosedFlowLingersPastItsCloseBackingOff) {
  core::Engine engine(skipping_with_repeat());
  Network net(engine, three_routers(), flow_from(40001));
  const core::FlowKey key = net.key();
  net.stream(20, 10ms);
  testpkt::Tcp fin = net.flow();
  fin.flags = 0x11;
  net.send(fin);
  ASSERT_EQ(engine.phase(key), Phase::closing);
  // On a lossy path its last data and FIN are resent for seconds, the RTO
  // doubling each time: each finds the flow closed, none starts it anew
  // (nor counts as a second connection).
  for (const auto gap : {2s, 4s, 8s, 16s}) {
    net.advance(gap);
    net.send(net.flow());
    EXPECT_EQ(engine.phase(key), Phase::closing) << "after a gap of " << gap.count() << " s";
  }
  // Forgotten 10 s after its last packet and twice the gap before it.
  net.advance(41s);
  EXPECT_EQ(engine.phase(key), Phase::closing);
  net.advance(2s);
  EXPECT_FALSE(engine.phase(key));
  EXPECT_EQ(net.traces.size(), 1u);
}

TEST(Lifecycle, DecisionsComeInTheOrderTheyWereMade) {
  core::Engine engine(skipping_with_repeat());
  Network net(engine, three_routers(), flow_from(40001));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  answer_all(engine, net.now());
  net.advance(2s);
  answer_all(engine, net.now());
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 2u);
  const std::vector<std::string>& decided = sim::decided(engine);
  // Each round: its first wave (the mark that lets the flow pass the queue
  // between waves, then the probes), every reply before the round's end,
  // the end before the skip mark that follows it; the next round's probes
  // only after the mark that brought the flow back was cleared.
  const std::size_t first_trace = first(decided, "trace");
  ASSERT_LT(first_trace + 1, decided.size());
  ASSERT_GE(decided.size(), 2u);
  EXPECT_EQ(decided[0], "between_waves");
  EXPECT_EQ(decided[1], "probe");
  EXPECT_EQ(decided[first_trace - 1], "hop");
  EXPECT_EQ(decided[first_trace + 1], "skip");
  const std::size_t unskip = first(decided, "unskip");
  ASSERT_LT(unskip + 2, decided.size());
  EXPECT_GT(unskip, first_trace);
  EXPECT_EQ(decided[unskip + 1], "between_waves") << "round 2 after the unskip";
  EXPECT_EQ(decided[unskip + 2], "probe");
  EXPECT_EQ(std::count(decided.begin(), decided.end(), "trace"), 2);
  EXPECT_EQ(decided.back(), "skip");
  EXPECT_EQ(decided[decided.size() - 2], "trace");
}

TEST(Lifecycle, AFlowLeftOutBySamplingSkipsAndStaysOut) {
  core::EngineConfig c;
  c.skip_marks = true;
  c.sample = 0.000001;
  core::Engine engine(c);
  Network net(engine, three_routers(), flow_from(40002));
  net.stream(5, 10ms);
  EXPECT_EQ(engine.phase(net.key()), Phase::unsampled);
  EXPECT_EQ(sim::decided(engine), std::vector<std::string>{"skip"});
}

TEST(Lifecycle, AFlowWithNoRoomWaitsIsAdmittedThenTraced) {
  core::EngineConfig c;
  c.max_flows = 1;
  core::Engine engine(c);
  Network a(engine, three_routers(), flow_from(40003));
  Network b(engine, three_routers(), flow_from(40004));
  a.stream(1, 1ms);
  b.stream(1, 1ms);
  EXPECT_EQ(engine.phase(a.key()), Phase::tracing);
  EXPECT_EQ(engine.phase(b.key()), Phase::waiting);
  // a ends; b is admitted at once, and traced with its next packet.
  for (int i = 0; i < 30 && a.traces.empty(); ++i) a.stream(1, 5ms);
  ASSERT_EQ(a.traces.size(), 1u);
  EXPECT_EQ(engine.phase(b.key()), Phase::admitted);
  b.stream(1, 1ms);
  EXPECT_EQ(engine.phase(b.key()), Phase::tracing);
}

TEST(Lifecycle, TheTransitionTableIsTheDiagram) {
  using core::allowed_transition;
  const Phase all[] = {Phase::fresh,    Phase::unsampled, Phase::watching, Phase::waiting,
                       Phase::admitted, Phase::tracing,   Phase::resting,  Phase::closing};
  int allowed = 0;
  for (Phase from : all)
    for (Phase to : all) allowed += allowed_transition(from, to);
  // fresh -> unsampled, watching, waiting, tracing; watching -> waiting,
  // admitted; waiting -> admitted; admitted -> tracing; tracing -> resting;
  // resting -> watching, waiting, tracing; and every phase but closing ->
  // closing.
  EXPECT_EQ(allowed, 4 + 2 + 1 + 1 + 1 + 3 + 7);
  EXPECT_TRUE(allowed_transition(Phase::resting, Phase::tracing));
  EXPECT_FALSE(allowed_transition(Phase::unsampled, Phase::tracing));
  EXPECT_FALSE(allowed_transition(Phase::closing, Phase::closing));
  EXPECT_FALSE(allowed_transition(Phase::waiting, Phase::tracing)) << "only once admitted";
}

TEST(Admission, ServesFirstComeFirstServedAndSkipsWhoWent) {
  core::Admission admission(2);
  const auto key = [](std::uint16_t port) {
    return core::FlowKey{*wire::Address::parse("10.0.0.1"), *wire::Address::parse("10.0.0.2"),
                         port, 80};
  };
  admission.start(false);
  admission.start(false);
  EXPECT_FALSE(admission.has_room());
  admission.wait(key(1));
  admission.wait(key(2));
  admission.wait(key(3));
  const auto everyone = [](const core::FlowKey&) { return true; };
  EXPECT_FALSE(admission.admit_next(everyone)) << "no room";
  admission.end();
  // Flow 1 went meanwhile: its turn passes to 2, whose place is kept.
  const auto admitted =
      admission.admit_next([&](const core::FlowKey& k) { return k.sport != 1; });
  ASSERT_TRUE(admitted);
  EXPECT_EQ(admitted->sport, 2);
  EXPECT_FALSE(admission.has_room()) << "the kept place counts";
  EXPECT_FALSE(admission.admit_next(everyone));
  admission.give_up_kept();  // 2 closed before its trace started
  const auto next = admission.admit_next(everyone);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->sport, 3);
  admission.start(/*in_kept_place=*/true);
  EXPECT_EQ(admission.running(), 2u);
  EXPECT_EQ(admission.kept(), 0u);
}

TEST(Admission, TheLimitIsWhatThePpsBudgetServes) {
  core::EngineConfig c;
  c.max_flows = 1000;
  c.probes_per_second = 1000;  // with 1 s timeouts and 16-TTL first waves: 62
  EXPECT_EQ(core::Admission::limit_for(c), 62u);
  c.max_flows = 10;
  EXPECT_EQ(core::Admission::limit_for(c), 10u);
  c.max_flows = 1000;
  c.probes_per_second = 0;  // no budget: --max-flows alone
  EXPECT_EQ(core::Admission::limit_for(c), 1000u);
  c.probes_per_second = 1;  // never fewer than a few
  EXPECT_EQ(core::Admission::limit_for(c), 4u);
}

TEST(ProbeBudget, StartsWithTheBurstRefillsAtTheRateAndTakesBackWhatWasNotSent) {
  core::ProbeBudget budget(100, 10);
  EXPECT_EQ(budget.take(16, 0ms), 10u);
  EXPECT_EQ(budget.take(5, 0ms), 0u);
  EXPECT_EQ(budget.take(5, 30ms), 3u);  // 100/s for 30 ms
  budget.give_back(2);
  EXPECT_EQ(budget.take(5, 30ms), 2u);
  EXPECT_EQ(budget.take(50, 10s), 10u) << "never more than the burst";
  core::ProbeBudget unlimited(0, 10);
  EXPECT_EQ(unlimited.take(1000, 0ms), 1000u);
}

namespace {

core::EngineConfig on_retransmission(bool skip_marks) {
  core::EngineConfig c;
  c.trigger = core::Trigger::retransmit;
  c.skip_marks = skip_marks;
  return c;
}

// The flow sends `count` new segments of 100 bytes.
void send_data(Network& net, int count, bool past_queue) {
  for (int i = 0; i < count; ++i) {
    testpkt::Tcp t = net.flow();
    t.payload.assign(100, static_cast<std::uint8_t>('a' + i % 26));
    if (past_queue) net.send_past_queue(t);
    else net.send(t);
    net.flow().seq += 100;
    net.advance(10ms);
  }
}

// The segment that began 300 bytes back, sent again.
void retransmit(Network& net, bool past_queue) {
  testpkt::Tcp t = net.flow();
  t.seq -= 300;
  t.payload.assign(100, 'r');
  if (past_queue) net.send_past_queue(t);
  else net.send(t);
}

}  // namespace

TEST(Trigger, AConnectionIsWatchedPastTheQueueUntilItRetransmitsThenTraced) {
  core::Engine engine(on_retransmission(true));
  Network net(engine, three_routers(), flow_from(40010));
  send_data(net, 1, false);  // its first packet comes through the queue
  EXPECT_EQ(engine.phase(net.key()), Phase::watching);
  auto& pending = sim::pending_skips(engine);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].skip, core::Skip::watch);
  answer_all(engine, net.now());
  send_data(net, 50, true);  // only copies reach us: no probe, no verdict
  EXPECT_TRUE(net.sent_probes_.empty());
  EXPECT_EQ(engine.counters().packets_logged, 50u);
  EXPECT_EQ(engine.phase(net.key()), Phase::watching);
  retransmit(net, true);
  EXPECT_EQ(engine.phase(net.key()), Phase::admitted);
  ASSERT_EQ(sim::pending_skips(engine).size(), 1u);
  EXPECT_FALSE(sim::pending_skips(engine)[0].skipping()) << "back through the queue for its round";
  answer_all(engine, net.now());
  send_data(net, 20, false);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, core::StopReason::reached);
  EXPECT_EQ(engine.counters().traces_triggered, 1u);
  // Without --repeat: once, whatever it retransmits later.
  answer_all(engine, net.now());
  retransmit(net, true);
  send_data(net, 20, true);
  EXPECT_EQ(net.traces.size(), 1u);
}

TEST(Trigger, ACountedTriggeredTraceIsOneThatBegan) {
  core::Engine engine(on_retransmission(true));
  Network net(engine, three_routers(), flow_from(40012));
  send_data(net, 1, false);
  answer_all(engine, net.now());
  retransmit(net, true);
  ASSERT_EQ(engine.phase(net.key()), Phase::admitted);
  EXPECT_EQ(engine.counters().retransmissions, 1u);
  // It closes before a packet of its round comes: no trace, none counted.
  testpkt::Tcp fin = net.flow();
  fin.flags = 0x11;
  net.send(fin);
  EXPECT_TRUE(net.traces.empty());
  EXPECT_EQ(engine.counters().traces_triggered, 0u);
}

TEST(Trigger, WithoutMarksTheRetransmissionInTheQueueStartsTheRoundAtOnce) {
  core::Engine engine(on_retransmission(false));
  Network net(engine, three_routers(), flow_from(40011));
  send_data(net, 30, false);
  EXPECT_TRUE(net.sent_probes_.empty());
  EXPECT_TRUE(sim::pending_skips(engine).empty());
  retransmit(net, false);
  EXPECT_FALSE(net.sent_probes_.empty()) << "probes with the retransmitted segment itself";
  send_data(net, 20, false);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_EQ(net.traces[0].reason, core::StopReason::reached);
}

TEST(Trigger, WithRepeatItWatchesAgainOnceTheIntervalIsOver) {
  auto c = on_retransmission(true);
  c.trace.repeat = 2s;
  core::Engine engine(c);
  Network net(engine, three_routers(), flow_from(40012));
  send_data(net, 1, false);
  answer_all(engine, net.now());
  retransmit(net, true);
  answer_all(engine, net.now());
  send_data(net, 20, false);
  ASSERT_EQ(net.traces.size(), 1u);
  answer_all(engine, net.now());
  EXPECT_EQ(engine.phase(net.key()), Phase::resting);
  retransmit(net, true);  // within the interval: nothing
  EXPECT_EQ(engine.phase(net.key()), Phase::resting);
  net.advance(2s);
  EXPECT_EQ(engine.phase(net.key()), Phase::watching);
  auto& pending = sim::pending_skips(engine);
  ASSERT_FALSE(pending.empty());
  EXPECT_EQ(pending.back().skip, core::Skip::watch);
  answer_all(engine, net.now());
  retransmit(net, true);
  answer_all(engine, net.now());
  send_data(net, 20, false);
  ASSERT_EQ(net.traces.size(), 2u);
  EXPECT_EQ(net.traces[1].round, 2u);
}

TEST(Lifecycle, ARoundSkipsTheQueueBetweenItsWaves) {
  core::EngineConfig c;
  c.skip_marks = true;
  core::Engine engine(c);
  Network net(engine, three_routers(), flow_from(40020));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  // Kinds of decision, with the runs of probes and replies folded.
  std::vector<std::string> folded;
  for (const std::string& d : sim::decided(engine))
    if (folded.empty() || folded.back() != d) folded.push_back(d);
  // First wave (16 TTLs), past the queue while its answers come; back for
  // the second wave once the destination is known (after its D-SACK, the
  // hop that names it), past the queue again; the end, past it for good.
  // The mark comes before each wave's probes: the packets behind the one
  // they copy skip the queue while the probes go out.
  const std::vector<std::string> expected = {"between_waves", "probe", "hop",  "next_wave",
                                             "between_waves", "probe", "hop",  "trace", "skip"};
  EXPECT_EQ(folded, expected);
  EXPECT_EQ(engine.counters().waves, 2u);
}

// When the rules can hand over a flow's next packet alone and then skip it
// again themselves (dup mode, packets copied rather than queued), a round
// asks for exactly that: `wave`, not `none`, and does not ask again for the
// skip the rules already set.
TEST(Lifecycle, ARoundAsksTheRulesForItsNextWavesPacketAlone) {
  core::EngineConfig c;
  c.skip_marks = true;
  c.one_copy_waves = true;
  core::Engine engine(c);
  Network net(engine, three_routers(), flow_from(40021));
  net.stream(20, 10ms);
  ASSERT_EQ(net.traces.size(), 1u);
  std::vector<std::string> folded;
  for (const std::string& d : sim::decided(engine))
    if (folded.empty() || folded.back() != d) folded.push_back(d);
  const std::vector<std::string> expected = {"between_waves", "probe", "hop", "next_packet",
                                             "probe",         "hop",   "trace", "skip"};
  EXPECT_EQ(folded, expected);
  EXPECT_EQ(engine.counters().waves, 2u);
  const auto pending = sim::pending_skips(engine);
  ASSERT_FALSE(pending.empty());
  EXPECT_EQ(pending.back().skip, core::Skip::all);
}

// A packet too small to carry a whole wave (a few bytes of data: the
// probes copy distinct ranges of it) leaves TTLs for the next packets: the
// round asks for all of them (`none`), not one, or a sparse flow's round
// would wait a packet per wave.
TEST(Lifecycle, AWaveShortOfDataAsksForTheFlowsNextPacketsNotOne) {
  core::EngineConfig c;
  c.skip_marks = true;
  c.one_copy_waves = true;
  core::Engine engine(c);
  Network net(engine, three_routers(), flow_from(40022));
  net.stream(1, 10ms, 12);
  const auto& decided = sim::decided(engine);
  ASSERT_FALSE(decided.empty());
  EXPECT_EQ(decided.front(), "probe") << "a short wave, no skip before it";
  EXPECT_TRUE(std::find(decided.begin(), decided.end(), "wave") == decided.end());
  net.stream(20, 10ms, 12);
  ASSERT_EQ(net.traces.size(), 1u);
  EXPECT_TRUE(net.traces[0].reached);
}

// A cooperating server's rules copy its clients' packets (dup mode needs no
// more), but a client may ask for mangle mode, whose verdicts set the TTL of
// the packets themselves: its round asks for the queue by its mark, and
// leaves it when it ends. A copy (sent before the mark took) is never
// mangled. The dup flow beside it is never queued.
TEST(Lifecycle, ARoundInMangleModeAsksForTheQueueWhereTheRulesCopy) {
  core::EngineConfig c = skipping_with_repeat();
  c.one_copy_waves = true;
  c.queue_by_mark = true;
  core::Engine engine(c);
  Network mangled(engine, three_routers(), flow_from(40030));
  Network copied(engine, three_routers(), flow_from(40031));
  mangled.copies_unless_queued = copied.copies_unless_queued = true;
  core::TraceParams mangle = c.trace;
  mangle.mode = core::Mode::mangle;
  mangle.packet_freq = 1;
  engine.request_trace(mangled.key(), mangle, sim::at(0ms));

  mangled.stream(1, 10ms);
  auto skips = sim::pending_skips(engine);
  ASSERT_EQ(skips.size(), 1u);
  EXPECT_EQ(skips[0].skip, core::Skip::queued);
  EXPECT_TRUE(mangled.mangled_.empty()) << "the first packet was a copy";
  answer_all(engine, mangled.now());
  mangled.stream(60, 10ms);
  mangled.advance(1s);
  ASSERT_EQ(mangled.traces.size(), 1u);
  EXPECT_TRUE(mangled.traces[0].reached);
  EXPECT_FALSE(mangled.mangled_.empty());
  skips = sim::pending_skips(engine);
  ASSERT_FALSE(skips.empty());
  EXPECT_EQ(skips.back().skip, core::Skip::all) << "past the queue till its next round";
  answer_all(engine, mangled.now());

  // Its next round: the rules copy the packet that starts it, then queue.
  mangled.advance(1s);
  mangled.stream(60, 10ms);
  mangled.advance(1s);
  ASSERT_EQ(mangled.traces.size(), 2u);
  EXPECT_TRUE(mangled.traces[1].reached);
  const auto queued = [&engine] {
    const auto& decided = sim::decided(engine);
    return std::count(decided.begin(), decided.end(), "queued");
  };
  EXPECT_EQ(queued(), 2);

  copied.stream(40, 10ms);
  ASSERT_EQ(copied.traces.size(), 1u);
  EXPECT_TRUE(copied.traces[0].reached);
  EXPECT_TRUE(copied.mangled_.empty());
  EXPECT_EQ(queued(), 2) << "a dup flow is never queued";
}
