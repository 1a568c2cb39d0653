// A client chooses the parameters of the trace a server runs towards it; the
// server's limits bound whatever it asks for. The server's defaults and
// limits here are the test's own, none of them nfqtrace's defaults, so that
// each expectation can only come from the one rule it checks.
#include <gtest/gtest.h>

#include <limits>

#include "nfqtrace/coop/limits.hpp"
#include "nfqtrace/coop/message.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

namespace {

core::TraceParams server_defaults() {
  core::TraceParams p;
  p.mode = core::Mode::dup;
  p.max_ttl = 20;
  p.ttl_repeat = 2;
  p.timeout = 700ms;
  p.gap_limit = 4;
  p.packet_freq = 9;
  p.first_window = 12;
  p.repeat = 10s;  // the server traces its other flows repeatedly
  return p;
}

coop::ServerLimits limits() {
  coop::ServerLimits l;
  l.max_ttl = 24;
  l.max_ttl_repeat = 4;
  l.min_timeout = 100ms;
  l.max_timeout = 3s;
  l.max_gap_limit = 7;
  l.min_packet_freq = 2;
  l.max_packet_freq = 500;
  return l;
}

coop::TraceRequest decoded_request(const std::string& params_json) {
  const auto d = coop::decode(R"({"type":"hello","version":1,"params":)" + params_json + "}");
  EXPECT_TRUE(d) << d.error().reason;
  if (!d) return {};
  return std::get<coop::Hello>(*d).params;
}

}  // namespace

TEST(Clamp, NothingAskedGivesTheServerDefaultsWithoutRepeats) {
  const auto c = coop::clamp({}, server_defaults(), limits());
  EXPECT_EQ(c.mode, core::Mode::dup);
  EXPECT_EQ(c.max_ttl, 20);
  EXPECT_EQ(c.ttl_repeat, 2);
  EXPECT_EQ(c.timeout, 700ms);
  EXPECT_EQ(c.gap_limit, 4);
  EXPECT_EQ(c.packet_freq, 9u);
  EXPECT_FALSE(c.repeat) << "one trace per client connection";
  EXPECT_EQ(c.first_window, 12) << "what a client cannot ask for stays the server's";
}

TEST(Clamp, WhatIsAskedWithinTheLimitsIsGranted) {
  const auto asked = decoded_request(
      R"({"mode":"mangle","maxttl":23,"ttlrepeat":4,"timeout":2.5,"packetfreq":400,"gaplimit":6})");
  const auto c = coop::clamp(asked, server_defaults(), limits());
  EXPECT_EQ(c.mode, core::Mode::mangle);
  EXPECT_EQ(c.max_ttl, 23);
  EXPECT_EQ(c.ttl_repeat, 4);
  EXPECT_EQ(c.timeout, 2500ms);
  EXPECT_EQ(c.packet_freq, 400u);
  EXPECT_EQ(c.gap_limit, 6);
}

TEST(Clamp, AbsurdRequestsFromTheWireAreBoundedByTheLimits) {
  const auto asked = decoded_request(
      R"({"maxttl":255,"ttlrepeat":1000,"timeout":1e9,"packetfreq":99999,)"
      R"("gaplimit":18446744073709551615})");
  const auto c = coop::clamp(asked, server_defaults(), limits());
  EXPECT_EQ(c.max_ttl, 24);
  EXPECT_EQ(c.ttl_repeat, 4);
  EXPECT_EQ(c.timeout, 3s);
  EXPECT_EQ(c.gap_limit, 7);
  EXPECT_EQ(c.packet_freq, 500u);
}

TEST(Clamp, ZeroesFromTheWireAreRaisedToTheMinimum) {
  const auto asked =
      decoded_request(R"({"maxttl":0,"ttlrepeat":0,"timeout":0,"gaplimit":0,"packetfreq":0})");
  const auto c = coop::clamp(asked, server_defaults(), limits());
  EXPECT_EQ(c.max_ttl, 1);
  EXPECT_EQ(c.ttl_repeat, 1);
  EXPECT_EQ(c.timeout, 100ms);
  EXPECT_EQ(c.gap_limit, 1);
  EXPECT_EQ(c.packet_freq, 2u);
}

TEST(Clamp, ExtremeValuesInMemoryAreBoundedToo) {
  coop::TraceRequest asked;
  asked.max_ttl = std::numeric_limits<std::uint64_t>::max();
  asked.ttl_repeat = 0;
  asked.gap_limit = 0;
  asked.packet_freq = std::numeric_limits<std::uint64_t>::max();
  asked.timeout = core::Duration::max();
  const auto c = coop::clamp(asked, server_defaults(), limits());
  EXPECT_EQ(c.max_ttl, 24);
  EXPECT_EQ(c.ttl_repeat, 1);
  EXPECT_EQ(c.gap_limit, 1);
  EXPECT_EQ(c.packet_freq, 500u);
  EXPECT_EQ(c.timeout, 3s);
}

TEST(Clamp, AnUnknownModeIsRefusedNotGuessed) {
  const auto d = coop::decode(R"({"type":"hello","version":1,"params":{"mode":"evil"}})");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().kind, coop::DecodeError::Kind::bad_field);
  EXPECT_NE(d.error().reason.find("params.mode"), std::string::npos);
}

TEST(Clamp, MangleOnlyWhereAllowed) {
  coop::TraceRequest asked;
  asked.mode = core::Mode::mangle;
  coop::ServerLimits l = limits();
  EXPECT_EQ(coop::clamp(asked, server_defaults(), l).mode, core::Mode::mangle);
  l.allow_mangle = false;
  EXPECT_EQ(coop::clamp(asked, server_defaults(), l).mode, core::Mode::dup);
  // Not even through the server's own default.
  core::TraceParams mangling = server_defaults();
  mangling.mode = core::Mode::mangle;
  EXPECT_EQ(coop::clamp({}, mangling, l).mode, core::Mode::dup);
}

TEST(Clamp, ServerDefaultsOutsideTheLimitsAreClampedToo) {
  core::TraceParams generous = server_defaults();
  generous.max_ttl = 64;
  generous.timeout = 30s;
  const auto c = coop::clamp({}, generous, limits());
  EXPECT_EQ(c.max_ttl, 24);
  EXPECT_EQ(c.timeout, 3s);
}

TEST(Clamp, InconsistentLimitsGiveTheLowerBound) {
  coop::ServerLimits l = limits();
  l.min_timeout = 2s;
  l.max_timeout = 1s;
  l.min_packet_freq = 50;
  l.max_packet_freq = 10;
  l.max_ttl = 0;
  const auto c = coop::clamp({}, server_defaults(), l);
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.packet_freq, 50u);
  EXPECT_EQ(c.max_ttl, 1);
}

TEST(Clamp, TheRequestOfAGrantedTraceAsksForExactlyIt) {
  coop::TraceRequest asked;
  asked.mode = core::Mode::mangle;
  asked.max_ttl = 12;
  asked.timeout = 300ms;
  const auto granted = coop::clamp(asked, server_defaults(), limits());
  const coop::TraceRequest effective = coop::request_of(granted);
  EXPECT_EQ(effective.mode, core::Mode::mangle);
  EXPECT_EQ(effective.max_ttl, 12u);
  EXPECT_EQ(effective.ttl_repeat, 2u);
  EXPECT_EQ(effective.timeout, 300ms);
  EXPECT_EQ(effective.gap_limit, 4u);
  EXPECT_EQ(effective.packet_freq, 9u);
  const auto again = coop::clamp(effective, server_defaults(), limits());
  EXPECT_EQ(coop::request_of(again), effective);
}
