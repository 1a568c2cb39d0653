// Reading nfqtrace's JSON back (output/parse.hpp): what the cooperating
// client relies on to show the server's results as its own.
#include <gtest/gtest.h>

#include "nfqtrace/output/format.hpp"
#include "nfqtrace/output/parse.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

namespace {

wire::Address addr(const char* text) { return *wire::Address::parse(text); }

core::Reply reply(const char* from, core::ReplyKind kind, core::Duration rtt,
                  std::uint8_t reply_ttl = 0) {
  core::Reply r;
  r.addr = addr(from);
  r.kind = kind;
  r.rtt = rtt;
  r.at.wall = 1'795'773'600s + 123456us + rtt;
  r.reply_ttl = reply_ttl;
  r.quoted_ttl = kind == core::ReplyKind::destination ? 0 : 1;
  return r;
}

core::TraceResult v4_trace() {
  core::TraceResult t;
  t.flow = core::FlowKey{addr("192.0.2.7"), addr("10.0.0.2"), 443, 41234};
  t.round = 1;
  t.start.wall = 1'795'773'600s + 123456us;
  t.end.wall = t.start.wall + 1234567us;
  t.reached = true;
  t.reason = core::StopReason::reached;
  t.probes_sent = 12;
  core::Reply unreachable = reply("203.0.113.9", core::ReplyKind::unreachable, 3ms, 250);
  unreachable.icmp_code = 13;
  t.hops = {core::Hop{1, 3,
                      {reply("198.51.100.1", core::ReplyKind::time_exceeded, 410us, 64),
                       reply("198.51.100.1", core::ReplyKind::time_exceeded, 1us)},
                      core::InferredFrom{t.flow.reversed(), 7}},
            core::Hop{2, 3, {}, {}},
            core::Hop{3, 3, {unreachable}, {}},
            core::Hop{4, 3, {reply("10.0.0.2", core::ReplyKind::destination, 12410us, 61)}, {}}};
  return t;
}

core::TraceResult v6_trace() {
  core::TraceResult t;
  t.flow = core::FlowKey{addr("2001:db8::7"), addr("2001:db8:1::2"), 9000, 50000};
  t.round = 7;
  t.mode = core::Mode::mangle;
  t.start.wall = 1'795'773'600s;
  t.end.wall = t.start.wall + 5s;
  t.reason = core::StopReason::gaplimit;
  t.probes_sent = 4;
  t.hops = {core::Hop{1, 1, {reply("fe80::1", core::ReplyKind::time_exceeded, 999999us)}, {}},
            core::Hop{2, 1, {}, {}}};
  return t;
}

}  // namespace

TEST(Parse, TracesRoundTripThroughTheirJson) {
  for (const core::TraceResult& t : {v4_trace(), v6_trace(), core::TraceResult{}}) {
    const nlohmann::json written = output::trace_json(t);
    const auto back = output::trace_from_json(written);
    ASSERT_TRUE(back) << back.error() << "\n" << written.dump();
    EXPECT_EQ(output::trace_json(*back), written);
    // And through text, as it crosses the connection.
    const auto reparsed = output::trace_from_json(nlohmann::json::parse(written.dump()));
    ASSERT_TRUE(reparsed);
    EXPECT_EQ(output::trace_json(*reparsed).dump(), written.dump());
  }
}

TEST(Parse, WhatThePathDidReadsBack) {
  core::TraceResult t = v4_trace();
  core::Reply& r = t.hops[0].replies[0];
  r.changes.add(core::Field::ip_dscp);
  r.changes.add(core::Field::tcp_seq);
  r.mpls = {{24001, 3, false, 254}, {16, 0, true, 1}};
  t.middleboxes = {{core::Field::ip_dscp, 2, std::uint64_t{0}, std::uint64_t{10}},
                   {core::Field::ip_src, 3, *wire::Address::parse("10.0.0.2"), *wire::Address::parse("198.51.100.9")},
                   {core::Field::tcp_options, 3, std::vector<std::uint8_t>{1, 1, 8, 10},
                    std::vector<std::uint8_t>{}}};
  t.rewrites = {{core::Field::tcp_seq, 0x9e3779b9, 2}};
  t.nat = core::Nat{3, "ip.src translated", "10.0.0.2:41234", "198.51.100.9:41234"};
  t.loss_from_ttl = 3;
  t.return_hops = 5;
  const nlohmann::json written = output::trace_json(t);
  const auto back = output::trace_from_json(nlohmann::json::parse(written.dump()));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(output::trace_json(*back), written);
  EXPECT_EQ(back->hops[0].replies[0].mpls, r.mpls);
  EXPECT_EQ(back->hops[0].replies[0].changes, r.changes);
  EXPECT_EQ(std::get<wire::Address>(back->middleboxes[1].seen).to_string(), "198.51.100.9");
  EXPECT_EQ(back->rewrites[0].offset, 0x9e3779b9u);
  // An older peer's trace, without any of it, reads too.
  nlohmann::json old = written;
  for (const char* key : {"middleboxes", "rewrites", "nat", "loss_from_ttl", "return_hops"}) old.erase(key);
  old["hops"][0]["replies"][0].erase("changes");
  old["hops"][0]["replies"][0].erase("mpls");
  EXPECT_TRUE(output::trace_from_json(old));
  // A field name nobody writes is refused, naming where.
  nlohmann::json bad = written;
  bad["middleboxes"][0]["field"] = "ip.colour";
  const auto refused = output::trace_from_json(bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), "middleboxes[0].field: not a field name");
}

TEST(Parse, EveryStopReasonAndReplyKindReadsBack) {
  for (auto reason : {core::StopReason::reached, core::StopReason::gaplimit,
                      core::StopReason::maxttl, core::StopReason::closed,
                      core::StopReason::stopped}) {
    core::TraceResult t = v4_trace();
    t.reason = reason;
    const auto back = output::trace_from_json(output::trace_json(t));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->reason, reason);
  }
  const auto back = output::trace_from_json(output::trace_json(v4_trace()));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->hops[2].replies[0].kind, core::ReplyKind::unreachable);
  EXPECT_EQ(back->hops[2].replies[0].icmp_code, 13);
  EXPECT_EQ(back->hops[3].replies[0].kind, core::ReplyKind::destination);
  EXPECT_EQ(back->hops[0].replies[0].rtt, 410us);
  EXPECT_EQ(back->hops[0].replies[0].reply_ttl, 64);
  EXPECT_EQ(back->hops[0].replies[1].reply_ttl, 0);  // not written: unknown
}

TEST(Parse, HopsRoundTrip) {
  const core::TraceResult t = v4_trace();
  for (const auto& hop : {core::HopEvent{t.flow, 1, 1, t.hops[0].replies[0]},
                          core::HopEvent{t.flow, 2, 3, t.hops[2].replies[0]},
                          core::HopEvent{v6_trace().flow, 7, 1, v6_trace().hops[0].replies[0]}}) {
    const nlohmann::json written = output::hop_json(hop);
    const auto back = output::hop_from_json(nlohmann::json::parse(written.dump()));
    ASSERT_TRUE(back) << back.error();
    EXPECT_EQ(output::hop_json(*back), written);
    EXPECT_EQ(back->flow, hop.flow);
    EXPECT_EQ(back->ttl, hop.ttl);
    EXPECT_EQ(back->round, hop.round);
  }
}

TEST(Parse, ParsedTimesKeepTheirDurations) {
  // Only wall-clock times travel: the monotonic ones are set equal to them,
  // so the duration of a received trace is right.
  const auto back = output::trace_from_json(output::trace_json(v4_trace()));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->start.wall, 1'795'773'600s + 123456us);
  EXPECT_EQ(back->end.mono - back->start.mono, 1234567us);
  EXPECT_NE(output::trace_text(*back).find("1.235 s"), std::string::npos)
      << output::trace_text(*back);
}

TEST(Parse, Rfc3339) {
  using output::parse_rfc3339;
  EXPECT_EQ(parse_rfc3339("2026-11-27T10:00:00.123456Z"), 1'795'773'600s + 123456us);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.000000Z"), 0s);
  EXPECT_EQ(parse_rfc3339("2026-11-27T10:00:00Z"), 1'795'773'600s);
  EXPECT_EQ(parse_rfc3339("2026-11-27T10:00:00.5z"), 1'795'773'600s + 500ms);
  EXPECT_EQ(parse_rfc3339("2026-11-27T10:00:00.000000001Z"), 1'795'773'600s + 1ns);
  EXPECT_EQ(parse_rfc3339("2026-11-27T11:30:00+01:30"), 1'795'773'600s);
  EXPECT_EQ(parse_rfc3339("2026-11-27T08:00:00-02:00"), 1'795'773'600s);
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59.000000Z"), -1s);
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z"), 1'709'164'800s);
  for (const char* bad : {"", "2026-11-27", "2026-11-27T10:00:00", "2026-13-27T10:00:00Z",
                          "2026-02-30T10:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T10:60:00Z",
                          "2026-11-27T10:00:00.Z", "2026-11-27T10:00:00.1234567890Z",
                          "2026-11-27T10:00:00Zjunk", "2026-11-27 10:00:00Z",
                          "2026-11-27T10:00:00+1:00", "+026-11-27T10:00:00Z"})
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
}

TEST(Parse, ErrorsNameTheFieldAndItsPath) {
  nlohmann::json j = output::trace_json(v4_trace());
  j["hops"][3]["replies"][0]["addr"] = "10.0.0.256";
  const auto trace = output::trace_from_json(j);
  ASSERT_FALSE(trace);
  EXPECT_EQ(trace.error(), "hops[3].replies[0].addr: must be an IPv4 or IPv6 address");

  nlohmann::json hop = output::hop_json(core::HopEvent{v4_trace().flow, 1, 1,
                                                       v4_trace().hops[0].replies[0]});
  hop.erase("rtt_ms");
  const auto no_rtt = output::hop_from_json(hop);
  ASSERT_FALSE(no_rtt);
  EXPECT_EQ(no_rtt.error(), "rtt_ms: missing");

  hop = output::hop_json(core::HopEvent{v4_trace().flow, 1, 1, v4_trace().hops[0].replies[0]});
  hop["rtt_ms"] = -1;
  EXPECT_FALSE(output::hop_from_json(hop));
  hop["rtt_ms"] = 1e300;
  EXPECT_FALSE(output::hop_from_json(hop));
  hop["rtt_ms"] = 1;  // an integer is a number too
  const auto whole_ms = output::hop_from_json(hop);
  EXPECT_TRUE(whole_ms) << whole_ms.error();
}

TEST(Parse, RefusesFlowsMixingFamiliesAndOutOfRangePorts) {
  const auto mixed = output::flow_from_json(
      nlohmann::json{{"src", "10.0.0.1"}, {"sport", 1}, {"dst", "2001:db8::1"}, {"dport", 2}});
  ASSERT_FALSE(mixed);
  EXPECT_NE(mixed.error().find("families"), std::string::npos) << mixed.error();
  const auto wide = output::flow_from_json(
      nlohmann::json{{"src", "10.0.0.1"}, {"sport", 65536}, {"dst", "10.0.0.2"}, {"dport", 2}});
  ASSERT_FALSE(wide);
  EXPECT_EQ(wide.error(), "sport: must be an integer from 0 to 65535");
  EXPECT_FALSE(output::flow_from_json(nlohmann::json::array()));
}

TEST(Parse, ModeNames) {
  EXPECT_EQ(output::mode_from_string("dup"), core::Mode::dup);
  EXPECT_EQ(output::mode_from_string("mangle"), core::Mode::mangle);
  EXPECT_FALSE(output::mode_from_string("Dup"));
}
