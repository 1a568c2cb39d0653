#include <gtest/gtest.h>

#include "nfqtrace/output/format.hpp"
#include "packets.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

namespace {

core::TraceResult sample() {
  core::TraceResult t;
  t.flow = core::FlowKey{testpkt::addr("10.0.0.2"), testpkt::addr("192.0.2.7"), 41234, 443};
  t.round = 1;
  t.start.wall = 1'795'773'600s + 123456us;  // 2026-11-27T10:00:00.123456Z
  t.end.wall = t.start.wall + 40ms;
  t.end.mono = t.start.mono + 40ms;
  t.reached = true;
  t.reason = core::StopReason::reached;
  t.probes_sent = 9;
  core::Hop h1{1, 3, {}, {}};
  core::Reply r;
  r.addr = testpkt::addr("198.51.100.1");
  r.rtt = 12410us;
  r.at.wall = t.start.wall + 12410us;
  h1.replies = {r, r};
  core::Hop h2{2, 3, {}, {}};
  core::Hop h3{3, 3, {}, {}};
  core::Reply d = r;
  d.addr = testpkt::addr("192.0.2.7");
  d.kind = core::ReplyKind::destination;
  h3.replies = {d};
  t.hops = {h1, h2, h3};
  return t;
}

}  // namespace

TEST(Format, Rfc3339WithMicroseconds) {
  EXPECT_EQ(output::rfc3339(1'795'773'600s + 123456us), "2026-11-27T10:00:00.123456Z");
  EXPECT_EQ(output::rfc3339(0s), "1970-01-01T00:00:00.000000Z");
}

TEST(Format, TraceJsonHasTheDocumentedNames) {
  auto j = output::trace_json(sample());
  EXPECT_EQ(j["type"], "trace");
  EXPECT_EQ(j["flow"]["src"], "10.0.0.2");
  EXPECT_EQ(j["flow"]["sport"], 41234);
  EXPECT_EQ(j["flow"]["dst"], "192.0.2.7");
  EXPECT_EQ(j["flow"]["dport"], 443);
  EXPECT_EQ(j["round"], 1);
  EXPECT_EQ(j["mode"], "dup");
  EXPECT_EQ(j["start"], "2026-11-27T10:00:00.123456Z");
  EXPECT_EQ(j["reached"], true);
  EXPECT_EQ(j["reason"], "reached");
  ASSERT_EQ(j["hops"].size(), 3u);
  EXPECT_EQ(j["hops"][0]["ttl"], 1);
  EXPECT_EQ(j["hops"][0]["replies"][0]["addr"], "198.51.100.1");
  EXPECT_DOUBLE_EQ(j["hops"][0]["replies"][0]["rtt_ms"].get<double>(), 12.41);
  EXPECT_EQ(j["hops"][0]["replies"][0]["time"], "2026-11-27T10:00:00.135866Z");
  EXPECT_TRUE(j["hops"][1]["replies"].empty());
  EXPECT_EQ(j["hops"][2]["replies"][0]["addr"], "192.0.2.7");
}

TEST(Format, HopJsonIsOneFlatObject) {
  core::HopEvent e{sample().flow, 2, 3, sample().hops[0].replies[0]};
  auto j = output::hop_json(e);
  EXPECT_EQ(j["type"], "hop");
  EXPECT_EQ(j["round"], 2);
  EXPECT_EQ(j["ttl"], 3);
  EXPECT_EQ(j["addr"], "198.51.100.1");
  EXPECT_DOUBLE_EQ(j["rtt_ms"].get<double>(), 12.41);
  EXPECT_EQ(j["kind"], "time-exceeded");
}

TEST(Format, TextTableShowsSilentHopsAndTheDestination) {
  const std::string text = output::trace_text(sample());
  EXPECT_NE(text.find("10.0.0.2:41234 -> 192.0.2.7:443"), std::string::npos);
  EXPECT_NE(text.find("  1  198.51.100.1  12.410 ms  12.410 ms\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  2  * * *\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  3  192.0.2.7  12.410 ms  [destination]\n"), std::string::npos) << text;
}

TEST(Format, Ipv6FlowsUseBrackets) {
  core::FlowKey f{testpkt::addr("2001:db8::2"), testpkt::addr("2001:db8::9"), 1, 2};
  EXPECT_EQ(output::flow_text(f), "[2001:db8::2]:1 -> [2001:db8::9]:2");
}

TEST(Format, AHopTakenOverFromAnotherTraceSaysSoInJsonAndText) {
  core::TraceResult t = sample();
  const core::FlowKey other{testpkt::addr("10.0.0.2"), testpkt::addr("192.0.2.7"), 41000, 443};
  t.hops[0].inferred_from = core::InferredFrom{other, 2};
  const auto j = output::trace_json(t);
  EXPECT_EQ(j["hops"][0]["inferred_from"]["flow"]["sport"], 41000);
  EXPECT_EQ(j["hops"][0]["inferred_from"]["round"], 2);
  EXPECT_FALSE(j["hops"][1].contains("inferred_from"));
  const std::string text = output::trace_text(t);
  EXPECT_NE(text.find("  1  198.51.100.1"), std::string::npos) << text;
  EXPECT_NE(text.find("[not probed: as traced for 10.0.0.2:41000 -> 192.0.2.7:443 round 2]"),
            std::string::npos)
      << text;
}
