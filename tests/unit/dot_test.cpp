// Graphviz text of traced paths, and Graphviz's own reading of it when
// installed.
#include <gtest/gtest.h>

#include <fstream>

#include "format_samples.hpp"
#include "nfqtrace/output/dot.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

namespace {

using Book = formats::FakeBook;

// The way back of ipv4_trace's connection, as the server traced it: it
// meets 203.0.113.9 as the forward path does, then another router.
core::TraceResult reverse_trace() {
  core::TraceResult t;
  t.flow = formats::ipv4_trace().flow.reversed();
  t.round = 1;
  t.reached = true;
  t.reason = core::StopReason::reached;
  core::Hop h1{1, 3, {formats::reply("203.0.113.9", 5ms, 255)}, {}, {}};
  core::Hop h2{2, 3, {formats::reply("198.51.100.77", 9ms, 254)}, {}, {}};
  core::Hop h3{3, 3, {formats::reply("10.0.0.2", 21ms, 62, core::ReplyKind::destination)}, {}, {}};
  t.hops = {h1, h2, h3};
  return t;
}

bool has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

}  // namespace

TEST(Dot, OneTraceIsAChainThroughItsHops) {
  const std::string text = output::dot_graph({{formats::ipv4_trace(), ""}}, nullptr);
  EXPECT_TRUE(text.starts_with("digraph nfqtrace {\n")) << text;
  EXPECT_TRUE(text.ends_with("}\n")) << text;
  EXPECT_TRUE(has(text, "  \"10.0.0.2\" [label=\"10.0.0.2\", shape=box];\n")) << text;
  EXPECT_TRUE(has(text, "  \"192.0.2.7\" [label=\"192.0.2.7\", shape=box];\n")) << text;
  EXPECT_TRUE(has(text, "  \"198.51.100.1\" [label=\"198.51.100.1\"];\n")) << text;
  const std::string star = "\"* 10.0.0.2:41234 -> 192.0.2.7:443 round 1 ttl 2\"";
  EXPECT_TRUE(has(text, "  " + star + " [label=\"*\", shape=plaintext];\n")) << text;
  // Edges carry the RTT of the hop they lead to (the lowest of its replies).
  EXPECT_TRUE(has(text, "  \"10.0.0.2\" -> \"198.51.100.1\" [color=black, label=\"1.234 ms\"];\n")) << text;
  EXPECT_TRUE(has(text, "  \"198.51.100.1\" -> " + star + " [color=black];\n")) << text;
  EXPECT_TRUE(has(text, "  " + star + " -> \"203.0.113.9\" [color=black, label=\"12.410 ms\"];\n")) << text;
  EXPECT_TRUE(has(text, "  \"203.0.113.9\" -> \"192.0.2.7\" [color=black, label=\"19.999 ms\"];\n")) << text;
  EXPECT_FALSE(has(text, "label=\"forward")) << "no legend without directions";
}

TEST(Dot, NamesAndAsNumbersFromTheAddressBook) {
  Book book;
  book.known[testpkt::addr("198.51.100.1")] = {"gw.example.net", 64500, "EXAMPLE-AS"};
  book.known[testpkt::addr("203.0.113.9")] = {"", 64501, ""};
  book.known[testpkt::addr("192.0.2.7")] = {"www.\"quoted\".example", std::nullopt, ""};
  const std::string text = output::dot_graph({{formats::ipv4_trace(), ""}}, &book);
  EXPECT_TRUE(has(text, "[label=\"198.51.100.1\\ngw.example.net\\nAS64500 EXAMPLE-AS\"];")) << text;
  EXPECT_TRUE(has(text, "[label=\"203.0.113.9\\nAS64501\"];")) << text;
  EXPECT_TRUE(has(text, "[label=\"192.0.2.7\\nwww.\\\"quoted\\\".example\", shape=box];")) << text;
}

TEST(Dot, BothDirectionsShareTheirCommonRouters) {
  const std::string text =
      output::dot_graph({{formats::ipv4_trace(), "forward"}, {reverse_trace(), "reverse"}}, nullptr);
  // One node for the router both directions met, one per endpoint.
  EXPECT_EQ(text.find("  \"203.0.113.9\" ["), text.rfind("  \"203.0.113.9\" [")) << text;
  EXPECT_EQ(text.find("  \"10.0.0.2\" ["), text.rfind("  \"10.0.0.2\" [")) << text;
  EXPECT_TRUE(has(text, "\"203.0.113.9\" -> \"192.0.2.7\" [color=blue, label=\"19.999 ms\"];")) << text;
  EXPECT_TRUE(has(text, "\"192.0.2.7\" -> \"203.0.113.9\" [color=red, label=\"5.000 ms\"];")) << text;
  // Asymmetry: the way back leaves through a router the way out never met.
  EXPECT_TRUE(has(text, "\"203.0.113.9\" -> \"198.51.100.77\" [color=red, label=\"9.000 ms\"];")) << text;
  EXPECT_TRUE(has(text, "\"198.51.100.77\" -> \"10.0.0.2\" [color=red, label=\"21.000 ms\"];")) << text;
  EXPECT_TRUE(has(text, "  label=\"forward (client to server): blue, reverse (server to client): red\";\n"));
  EXPECT_TRUE(has(text, "ttl 2 forward\" [label=\"*\"")) << text;
}

TEST(Dot, SeveralFlowsKeepTheirSilencesApartAndShowAnUnreachedDestination) {
  core::TraceResult other = formats::ipv4_trace();
  other.flow.sport = 41235;
  other.reached = false;
  other.reason = core::StopReason::gaplimit;
  other.hops.pop_back();
  const std::string text = output::dot_graph({{formats::ipv4_trace(), ""}, {other, ""}}, nullptr);
  EXPECT_TRUE(has(text, "\"* 10.0.0.2:41234 -> 192.0.2.7:443 round 1 ttl 2\" [")) << text;
  EXPECT_TRUE(has(text, "\"* 10.0.0.2:41235 -> 192.0.2.7:443 round 1 ttl 2\" [")) << text;
  EXPECT_TRUE(has(text, "\"203.0.113.9\" -> \"192.0.2.7\" [color=black, style=dashed];")) << text;
}

TEST(Dot, GraphvizReadsIt) {
  if (!formats::have_program("dot")) GTEST_SKIP() << "graphviz is not installed";
  Book book;
  book.known[testpkt::addr("198.51.100.1")] = {"gw.example.net", 64500, "EXAMPLE \"AS\""};
  const std::string path = ::testing::TempDir() + "nfqtrace_dot_test.dot";
  std::ofstream(path) << output::dot_graph(
      {{formats::ipv4_trace(), "forward"}, {reverse_trace(), "reverse"}, {formats::ipv6_trace(), ""}}, &book);
  const auto svg = formats::run("dot -Tsvg " + path + " 2>&1");
  ASSERT_TRUE(svg.ok) << svg.out;
  EXPECT_TRUE(has(svg.out, "<svg")) << svg.out;
  EXPECT_TRUE(has(svg.out, "gw.example.net")) << svg.out;
}
