#include <gtest/gtest.h>

#include "nfqtrace/output/compare.hpp"
#include "packets.hpp"

using namespace nfqtrace;
using namespace std::chrono_literals;

namespace {

core::TraceResult trace(const std::string& src, const std::string& dst,
                        std::vector<std::string> routers, bool reached = true) {
  core::TraceResult t;
  t.flow = core::FlowKey{testpkt::addr(src), testpkt::addr(dst), 1000, 9000};
  t.reached = reached;
  t.reason = reached ? core::StopReason::reached : core::StopReason::gaplimit;
  std::uint8_t ttl = 1;
  for (const auto& r : routers) {
    core::Hop h{ttl++, 3, {}, {}};
    if (!r.empty()) {
      core::Reply reply;
      reply.addr = testpkt::addr(r);
      reply.rtt = 1ms;
      h.replies.push_back(reply);
    }
    t.hops.push_back(h);
  }
  if (reached) {
    core::Hop h{ttl, 3, {}, {}};
    core::Reply reply;
    reply.addr = testpkt::addr(dst);
    reply.kind = core::ReplyKind::destination;
    reply.rtt = 2ms;
    h.replies.push_back(reply);
    t.hops.push_back(h);
  }
  return t;
}

}  // namespace

TEST(CompareText, ShowsBothDirectionsHopByHopAndMarksOneSidedRouters) {
  auto fwd = trace("10.0.0.2", "10.0.9.2", {"10.0.1.1", "10.0.2.1"});
  auto rev = trace("10.0.9.2", "10.0.0.2", {"10.0.8.1", "", "10.0.2.1"});
  const std::string text = output::compare_text(fwd, rev);
  EXPECT_NE(text.find("forward  10.0.0.2:1000 -> 10.0.9.2:9000  reached, 3 hops"), std::string::npos) << text;
  EXPECT_NE(text.find("reverse  10.0.9.2:1000 -> 10.0.0.2:9000  reached, 4 hops"), std::string::npos) << text;
  // TTL 1: 10.0.1.1 forward, 10.0.8.1 back: neither seen the other way.
  auto line1 = text.substr(text.find("\n  1  "));
  line1 = line1.substr(1, line1.find('\n', 1) - 1);
  EXPECT_NE(line1.find("10.0.1.1  1.000 ms"), std::string::npos) << line1;
  EXPECT_NE(line1.find("10.0.8.1  1.000 ms"), std::string::npos) << line1;
  EXPECT_NE(line1.find("<>"), std::string::npos) << line1;
  // TTL 2: a router both ways (10.0.2.1 forward) and a silent hop back.
  auto line2 = text.substr(text.find("\n  2  "));
  line2 = line2.substr(1, line2.find('\n', 1) - 1);
  EXPECT_NE(line2.find("*"), std::string::npos) << line2;
  EXPECT_EQ(line2.find("<>"), std::string::npos) << line2;
  EXPECT_NE(text.find("[dest]"), std::string::npos);
  EXPECT_NE(text.find("The paths differ: 3 hops forward, 4 back."), std::string::npos) << text;
}

TEST(CompareText, SameRoutersBothWaysAreNotMarked) {
  auto fwd = trace("10.0.0.2", "10.0.9.2", {"10.0.1.1", "10.0.2.1"});
  auto rev = trace("10.0.9.2", "10.0.0.2", {"10.0.2.1", "10.0.1.1"});
  const std::string text = output::compare_text(fwd, rev);
  EXPECT_EQ(text.find("<>"), std::string::npos) << text;
  EXPECT_EQ(text.find("differ"), std::string::npos) << text;
}
