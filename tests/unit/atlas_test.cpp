// RIPE Atlas traceroute results: a golden result, and the field types
// Atlas' result format documents (what readers such as sagan rely on).
#include <gtest/gtest.h>

#include "format_samples.hpp"
#include "nfqtrace/output/atlas.hpp"

using namespace nfqtrace;
using nlohmann::json;

namespace {

output::AtlasContext context() {
  output::AtlasContext c;
  c.version = "0.9.0";
  c.from = "198.51.100.200";
  return c;
}

}  // namespace

TEST(Atlas, Ipv4TraceMatchesTheGoldenResult) {
  const json expected = json::parse(R"({
    "type": "traceroute", "fw": 5000, "mver": "0.9.0", "lts": -1, "af": 4,
    "src_addr": "10.0.0.2", "dst_addr": "192.0.2.7", "dst_name": "192.0.2.7",
    "proto": "TCP", "paris_id": 1, "timestamp": 1795773600, "endtime": 1795773601,
    "from": "198.51.100.200", "msm_name": "Traceroute",
    "result": [
      {"hop": 1, "result": [
        {"from": "198.51.100.1", "rtt": 1.234, "ttl": 255},
        {"from": "198.51.100.1", "rtt": 1.5, "ttl": 255,
         "icmpext": {"version": 2, "rfc4884": 1,
                     "obj": [{"class": 1, "type": 1, "mpls": [{"exp": 0, "label": 24001, "s": 1, "ttl": 1}]}]}},
        {"x": "*"}]},
      {"hop": 2, "result": [{"x": "*"}, {"x": "*"}, {"x": "*"}]},
      {"hop": 3, "result": [{"from": "203.0.113.9", "rtt": 12.41, "ttl": 253}, {"x": "*"}, {"x": "*"}]},
      {"hop": 4, "result": [
        {"from": "192.0.2.7", "rtt": 20.001, "ttl": 61, "flags": "A"},
        {"from": "192.0.2.7", "rtt": 19.999, "ttl": 61, "flags": "A"},
        {"x": "*"}]}
    ]})");
  const json got = output::atlas_json(formats::ipv4_trace(), context());
  EXPECT_EQ(got, expected) << got.dump(1);
}

TEST(Atlas, Ipv6TraceAndTheOptionalIdentifiers) {
  output::AtlasContext c = context();
  c.msm_id = 1001;
  c.prb_id = 7;
  c.probe_size = 72;
  const json j = output::atlas_json(formats::ipv6_trace(), c);
  EXPECT_EQ(j["af"], 6);
  EXPECT_EQ(j["src_addr"], "2001:db8::2");
  EXPECT_EQ(j["msm_id"], 1001);
  EXPECT_EQ(j["prb_id"], 7);
  EXPECT_EQ(j["size"], 72);
  EXPECT_FALSE(j.contains("group_id"));
  ASSERT_EQ(j["result"].size(), 3u);
  EXPECT_EQ(j["result"][0]["result"][0], json::parse(R"({"from":"2001:db8::1","rtt":0.8,"ttl":64})"));
  EXPECT_EQ(j["result"][2]["result"][0]["flags"], "A");
}

TEST(Atlas, UnreachableRepliesCarryAtlasErrLettersAndTheQuotedTtl) {
  core::TraceResult t = formats::ipv4_trace();
  core::Reply& r = t.hops[2].replies[0];
  r.kind = core::ReplyKind::unreachable;
  r.icmp_code = 13;
  r.quoted_ttl = 2;
  json j = output::atlas_json(t, context())["result"][2]["result"][0];
  EXPECT_EQ(j["err"], "A");
  EXPECT_EQ(j["ittl"], 2);
  r.icmp_code = 9;  // no letter: the code
  EXPECT_EQ(output::atlas_json(t, context())["result"][2]["result"][0]["err"], 9);
}

TEST(Atlas, LateRepliesKeepTheirRtt) {
  core::TraceResult t = formats::ipv4_trace();
  t.hops[2].replies[0].late = true;
  const json j = output::atlas_json(t, context())["result"][2]["result"][0];
  EXPECT_FALSE(j.contains("late"));
  EXPECT_EQ(j["rtt"], 12.41);
}

// The types Atlas' result format documents for a traceroute result.
TEST(Atlas, FieldsHaveAtlasTypes) {
  for (const core::TraceResult& t : {formats::ipv4_trace(), formats::ipv6_trace()}) {
    const json j = output::atlas_json(t, context());
    for (const char* key : {"fw", "lts", "af", "paris_id", "timestamp", "endtime"})
      EXPECT_TRUE(j[key].is_number_integer()) << key;
    for (const char* key : {"type", "mver", "src_addr", "dst_addr", "dst_name", "proto", "from", "msm_name"})
      EXPECT_TRUE(j[key].is_string()) << key;
    ASSERT_TRUE(j["result"].is_array());
    for (const json& hop : j["result"]) {
      EXPECT_TRUE(hop["hop"].is_number_integer());
      ASSERT_TRUE(hop["result"].is_array());
      ASSERT_FALSE(hop["result"].empty());
      for (const json& reply : hop["result"]) {
        if (reply.contains("x")) {
          EXPECT_EQ(reply["x"], "*");
          EXPECT_EQ(reply.size(), 1u);
          continue;
        }
        EXPECT_TRUE(reply["from"].is_string());
        EXPECT_TRUE(reply["rtt"].is_number());
        EXPECT_TRUE(reply["ttl"].is_number_integer());
        if (reply.contains("flags")) {
          EXPECT_TRUE(reply["flags"].is_string());
        }
        if (reply.contains("ittl")) {
          EXPECT_TRUE(reply["ittl"].is_number_integer());
        }
      }
    }
  }
}
