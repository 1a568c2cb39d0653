// What the live view shows (tools/common/live_model.hpp): mtr's columns per
// TTL over the rounds, the notes, and the flows in the order they came.
#include <gtest/gtest.h>

#include "live_model.hpp"

namespace nfqtrace::cli {
namespace {

using namespace std::chrono_literals;

const core::FlowKey flow{*wire::Address::parse("10.0.0.2"), *wire::Address::parse("192.0.2.7"),
                         41234, 443};

core::HopEvent reply(std::uint32_t round, std::uint8_t ttl, const char* addr, core::Duration rtt,
                     core::ReplyKind kind = core::ReplyKind::time_exceeded) {
  core::HopEvent h;
  h.flow = flow;
  h.round = round;
  h.ttl = ttl;
  h.reply.addr = *wire::Address::parse(addr);
  h.reply.rtt = rtt;
  h.reply.kind = kind;
  return h;
}

// A round's end: TTL 1 answered `answered1` of 3, TTL 2 silent, TTL 3 the peer.
core::TraceResult round_end(std::uint32_t round, std::size_t answered1) {
  core::TraceResult t;
  t.flow = flow;
  t.round = round;
  t.reason = core::StopReason::reached;
  t.hops.resize(3);
  for (std::uint8_t i = 0; i < 3; ++i) {
    t.hops[i].ttl = static_cast<std::uint8_t>(i + 1);
    t.hops[i].probes_sent = 3;
  }
  t.hops[0].replies.resize(answered1);
  t.hops[2].replies.resize(3);
  return t;
}

class Book final : public output::AddressBook {
 public:
  const output::AddressInfo* find(const wire::Address& a) const override {
    return a.to_string() == "10.0.1.1" ? &r1_ : nullptr;
  }

 private:
  output::AddressInfo r1_{"r1.example.net", 64500, "EXAMPLE"};
};

TEST(LiveModel, RowsAreMtrsColumnsOverEveryRound) {
  LiveModel m;
  m.hop(reply(1, 1, "10.0.1.1", 2ms), Direction::none);
  m.hop(reply(1, 3, "192.0.2.7", 10ms, core::ReplyKind::destination), Direction::none);
  m.trace(round_end(1, 3), Direction::none);
  m.hop(reply(2, 1, "10.0.1.1", 4ms), Direction::none);
  m.trace(round_end(2, 1), Direction::none);

  ASSERT_EQ(m.flows(), 1u);
  const auto v = m.view(0, nullptr, true);
  EXPECT_EQ(v.title, "10.0.0.2:41234 -> 192.0.2.7:443, round 2 (ended: reached)");
  ASSERT_EQ(v.rows.size(), 3u);
  const auto& r1 = v.rows[0];
  EXPECT_EQ(r1.host, "10.0.1.1");
  EXPECT_EQ(r1.sent, 6u);
  EXPECT_EQ(r1.answered, 4u);
  EXPECT_NEAR(*r1.loss_pct, 100.0 * 2 / 6, 1e-9);
  EXPECT_DOUBLE_EQ(*r1.last_ms, 4.0);
  EXPECT_DOUBLE_EQ(*r1.avg_ms, 3.0);
  EXPECT_DOUBLE_EQ(*r1.best_ms, 2.0);
  EXPECT_DOUBLE_EQ(*r1.worst_ms, 4.0);
  EXPECT_EQ(v.rows[1].host, "*") << "probed, never answered";
  EXPECT_FALSE(v.rows[1].last_ms);
  EXPECT_EQ(v.rows[2].notes, "destination");
}

TEST(LiveModel, NamesAndAsWhenKnownAndAskedFor) {
  LiveModel m;
  m.hop(reply(1, 1, "10.0.1.1", 2ms), Direction::none);
  const Book book;
  EXPECT_EQ(m.view(0, &book, true).rows[0].host, "r1.example.net (10.0.1.1)");
  EXPECT_EQ(m.view(0, &book, true).rows[0].as, "AS64500");
  EXPECT_EQ(m.view(0, &book, false).rows[0].host, "10.0.1.1") << "names switched off (n)";
}

TEST(LiveModel, APathChangeIsMarkedWhereItChangedAndDirectionsAreFlowsOfTheirOwn) {
  LiveModel m;
  m.hop(reply(1, 1, "10.0.1.1", 2ms), Direction::forward);
  m.hop(reply(1, 2, "10.0.2.1", 2ms), Direction::forward);
  m.hop(reply(1, 1, "10.9.1.1", 2ms), Direction::reverse);
  EXPECT_EQ(m.flows(), 2u);
  core::PathChange change;
  change.flow = flow;
  change.changes.push_back({2, {}, {}});
  m.path_change(change);
  const auto v = m.view(0, nullptr, true);
  EXPECT_NE(v.title.find(" forward, round 1 (tracing)"), std::string::npos) << v.title;
  EXPECT_EQ(v.rows[0].notes, "");
  EXPECT_EQ(v.rows[1].notes, "PATH CHANGED");
}

}  // namespace
}  // namespace nfqtrace::cli
