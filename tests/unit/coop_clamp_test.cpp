// A client chooses the parameters of the trace a server runs towards it; the
// server's limits bound whatever it asks for.
#include <gtest/gtest.h>

#include <limits>

#include "nfqtrace/coop/limits.hpp"
#include "nfqtrace/coop/message.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

namespace {

core::TraceConfig server_defaults() {
  core::TraceConfig c;  // nfqtrace's own defaults: dup, 30, 3, 1 s, gap 5, freq 6
  c.repeat = 10s;       // the server traces its other flows repeatedly
  c.max_flows = 77;
  c.idle_timeout = 42s;
  c.seed = 9;
  return c;
}

coop::TraceParams decoded_params(const std::string& params_json) {
  const auto d = coop::decode(R"({"type":"hello","version":1,"params":)" + params_json + "}");
  EXPECT_TRUE(std::holds_alternative<coop::Message>(d));
  if (!std::holds_alternative<coop::Message>(d)) return {};
  return std::get<coop::Hello>(std::get<coop::Message>(d)).params;
}

}  // namespace

TEST(Clamp, NothingAskedGivesTheServerDefaultsWithoutRepeats) {
  const auto c = coop::clamp({}, server_defaults(), coop::ServerLimits{});
  EXPECT_EQ(c.mode, core::Mode::dup);
  EXPECT_EQ(c.max_ttl, 30);
  EXPECT_EQ(c.ttl_repeat, 3);
  EXPECT_EQ(c.timeout, 1s);
  EXPECT_EQ(c.gap_limit, 5);
  EXPECT_EQ(c.packet_freq, 6u);
  EXPECT_FALSE(c.repeat) << "one trace per client connection";
  // What a client cannot ask for stays the server's.
  EXPECT_EQ(c.max_flows, 77u);
  EXPECT_EQ(c.idle_timeout, 42s);
  EXPECT_EQ(c.seed, 9u);
}

TEST(Clamp, AbsurdRequestsFromTheWireAreBounded) {
  const auto asked = decoded_params(
      R"({"maxttl":255,"ttlrepeat":1000,"timeout":1e9,"packetfreq":0,)"
      R"("gaplimit":18446744073709551615})");
  const auto c = coop::clamp(asked, server_defaults(), coop::ServerLimits{});
  EXPECT_EQ(c.max_ttl, 32);
  EXPECT_EQ(c.ttl_repeat, 5);
  EXPECT_EQ(c.timeout, 5s);
  EXPECT_EQ(c.gap_limit, 10);
  EXPECT_EQ(c.packet_freq, 1u);
}

TEST(Clamp, ZeroesFromTheWireAreRaisedToTheMinimum) {
  const auto asked = decoded_params(R"({"maxttl":0,"ttlrepeat":0,"timeout":0,"gaplimit":0})");
  const auto c = coop::clamp(asked, server_defaults(), coop::ServerLimits{});
  EXPECT_EQ(c.max_ttl, 1);
  EXPECT_EQ(c.ttl_repeat, 1);
  EXPECT_EQ(c.timeout, 50ms);
  EXPECT_EQ(c.gap_limit, 1);
}

TEST(Clamp, ZeroCountsAndTimeoutBecomeTheSmallestAllowed) {
  coop::TraceParams asked;
  asked.max_ttl = 0;
  asked.ttl_repeat = 0;
  asked.gap_limit = 0;
  asked.packet_freq = std::numeric_limits<std::uint64_t>::max();
  asked.timeout = 0s;
  const auto c = coop::clamp(asked, server_defaults(), coop::ServerLimits{});
  EXPECT_EQ(c.max_ttl, 1);
  EXPECT_EQ(c.ttl_repeat, 1);
  EXPECT_EQ(c.gap_limit, 1);
  EXPECT_EQ(c.packet_freq, 1000u);
  EXPECT_EQ(c.timeout, 50ms);
}

TEST(Clamp, AnUnknownModeIsRefusedNotGuessed) {
  const auto d = coop::decode(R"({"type":"hello","version":1,"params":{"mode":"evil"}})");
  ASSERT_TRUE(std::holds_alternative<coop::DecodeError>(d));
  EXPECT_EQ(std::get<coop::DecodeError>(d).kind, coop::DecodeError::Kind::bad_field);
  EXPECT_NE(std::get<coop::DecodeError>(d).reason.find("params.mode"), std::string::npos);
}

TEST(Clamp, MangleOnlyWhereAllowed) {
  coop::TraceParams asked;
  asked.mode = core::Mode::mangle;
  coop::ServerLimits limits;
  EXPECT_EQ(coop::clamp(asked, server_defaults(), limits).mode, core::Mode::mangle);
  limits.allow_mangle = false;
  EXPECT_EQ(coop::clamp(asked, server_defaults(), limits).mode, core::Mode::dup);
  // Not even through the server's own default.
  core::TraceConfig mangling = server_defaults();
  mangling.mode = core::Mode::mangle;
  EXPECT_EQ(coop::clamp({}, mangling, limits).mode, core::Mode::dup);
}

TEST(Clamp, ServerDefaultsOutsideTheLimitsAreClampedToo) {
  core::TraceConfig generous = server_defaults();
  generous.max_ttl = 64;
  generous.timeout = 30s;
  const auto c = coop::clamp({}, generous, coop::ServerLimits{});
  EXPECT_EQ(c.max_ttl, 32);
  EXPECT_EQ(c.timeout, 5s);
}

TEST(Clamp, InconsistentLimitsGiveTheLowerBound) {
  coop::ServerLimits limits;
  limits.min_timeout = 2s;
  limits.max_timeout = 1s;
  limits.min_packet_freq = 50;
  limits.max_packet_freq = 10;
  limits.max_ttl = 0;
  const auto c = coop::clamp({}, server_defaults(), limits);
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.packet_freq, 50u);
  EXPECT_EQ(c.max_ttl, 1);
}

TEST(Clamp, ParamsOfAGrantedConfigAskForExactlyIt) {
  coop::TraceParams asked;
  asked.mode = core::Mode::mangle;
  asked.max_ttl = 12;
  asked.timeout = 300ms;
  const auto granted = coop::clamp(asked, server_defaults(), coop::ServerLimits{});
  const coop::TraceParams effective = coop::params_of(granted);
  EXPECT_EQ(effective.mode, core::Mode::mangle);
  EXPECT_EQ(effective.max_ttl, 12u);
  EXPECT_EQ(effective.ttl_repeat, 3u);
  EXPECT_EQ(effective.timeout, 300ms);
  EXPECT_EQ(effective.gap_limit, 5u);
  EXPECT_EQ(effective.packet_freq, 6u);
  const auto again = coop::clamp(effective, server_defaults(), coop::ServerLimits{});
  EXPECT_EQ(coop::params_of(again), effective);
}
