// The --metrics page: what the recorder counts from the results, and the
// text exposition format it is written in (tools/common/metrics.hpp).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "metrics.hpp"

namespace nfqtrace::cli {
namespace {

using namespace std::chrono_literals;

core::TraceResult trace_to(const char* dst, core::StopReason reason, core::Duration took,
                           std::size_t hops = 3) {
  core::TraceResult t;
  t.flow.src = *wire::Address::parse("10.0.0.2");
  t.flow.dst = *wire::Address::parse(dst);
  t.reason = reason;
  t.reached = reason == core::StopReason::reached;
  t.start.mono = 1s;
  t.end.mono = 1s + took;
  t.hops.resize(hops);
  return t;
}

bool contains_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(Metrics, EmptyPageHasEverySeriesAtZero) {
  MetricsSnapshot s;
  s.version = "1.2.3";
  s.revision = "abc123";
  const std::string text = metrics_text(s);
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_build_info{version="1.2.3",revision="abc123"} 1)")) << text;
  for (const char* reason : {"reached", "gaplimit", "maxttl", "closed", "stopped"})
    EXPECT_TRUE(contains_line(text, std::string("nfqtrace_traces_total{reason=\"") + reason + "\"} 0"));
  EXPECT_TRUE(contains_line(text, "# TYPE nfqtrace_traces_total counter"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_trace_duration_seconds_bucket{le="+Inf"} 0)"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_trace_duration_seconds_count 0"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_dns_lookups_total 0"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_asn_lookup_failures_total 0"));
  // No tracer: none of its series; no --metrics-top: no prefix.
  EXPECT_EQ(text.find("nfqtrace_probes_sent_total"), std::string::npos);
  EXPECT_EQ(text.find("prefix"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

TEST(Metrics, RecorderCountsTracesByReasonAndDuration) {
  MetricsRecorder r;
  r.trace(trace_to("192.0.2.7", core::StopReason::reached, 300ms), Direction::none);
  r.trace(trace_to("192.0.2.8", core::StopReason::reached, 2s), Direction::none);
  r.trace(trace_to("192.0.2.9", core::StopReason::gaplimit, 50ms), Direction::none);
  r.path_change(core::PathChange{});
  r.hop(core::HopEvent{}, Direction::none);
  MetricsSnapshot s;
  s.results = r.counts();
  const std::string text = metrics_text(s);
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_traces_total{reason="reached"} 2)")) << text;
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_traces_total{reason="gaplimit"} 1)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_traces_total{reason="stopped"} 0)"));
  // Cumulative buckets: 0.05 s falls in le="0.05".
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_trace_duration_seconds_bucket{le="0.05"} 1)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_trace_duration_seconds_bucket{le="0.25"} 1)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_trace_duration_seconds_bucket{le="0.5"} 2)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_trace_duration_seconds_bucket{le="2.5"} 3)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_trace_duration_seconds_bucket{le="+Inf"} 3)"));
  const std::string sum = "\nnfqtrace_trace_duration_seconds_sum ";
  const std::size_t at = text.find(sum);
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stod(text.substr(at + sum.size())), 2.35, 1e-9);
  EXPECT_TRUE(contains_line(text, "nfqtrace_trace_duration_seconds_count 3"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_path_changes_total 1"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_hop_replies_total 1"));
}

TEST(Metrics, TracerCountersAndGauges) {
  MetricsSnapshot s;
  core::EngineCounters e;
  e.probes_sent = 40;
  e.icmp_matched = 17;
  e.waves = 9;
  e.icmp_no_probe = 2;
  e.peer_resets_rejected = 1;
  runtime::RuntimeCounters rt;
  rt.queue_packets = 1234;
  rt.copied_packets = 321;
  rt.log_copies_lost = 7;
  rt.icmp_unreadable.add(wire::ParseError::truncated);
  rt.copy_unreadable.add(wire::ParseError::truncated);
  rt.copy_unreadable.add(wire::ParseError::truncated);
  s.engine = e;
  s.runtime = rt;
  s.flows = core::Engine::FlowCounts{5, 1, 2, 3};
  s.server_clients = 4;
  s.lookups = LookupCounts{10, 2, 7, 1};
  const std::string text = metrics_text(s);
  EXPECT_TRUE(contains_line(text, "nfqtrace_probes_sent_total 40")) << text;
  EXPECT_TRUE(contains_line(text, "nfqtrace_probe_waves_total 9"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_replies_matched_total 17"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_queue_packets_total 1234"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_copied_packets_total 321"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_log_copies_lost_total 7"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_packets_refused_total{packet="icmp",reason="no_such_probe"} 2)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_packets_refused_total{packet="peer",reason="reset_off_the_window"} 1)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_packets_unreadable_total{packet="icmp",reason="truncated"} 1)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_packets_unreadable_total{packet="queued",reason="truncated"} 0)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_packets_unreadable_total{packet="copied",reason="truncated"} 2)"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_flows_tracked 5"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_flows_tracing 1"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_flows_waiting 2"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_flows_skipping 3"));
  EXPECT_TRUE(contains_line(text, "# TYPE nfqtrace_flows_skipping gauge"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_server_clients 4"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_dns_lookups_total 10"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_dns_lookup_failures_total 2"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_asn_lookups_total 7"));
  EXPECT_TRUE(contains_line(text, "nfqtrace_asn_lookup_failures_total 1"));
}

TEST(Metrics, LookupCountsHook) {
  MetricsRecorder r;
  r.set_lookup_counts(LookupCounts{3, 1, 0, 0});
  MetricsSnapshot s = metrics_snapshot(r, nullptr);
  EXPECT_FALSE(s.version.empty());
  EXPECT_TRUE(contains_line(metrics_text(s), "nfqtrace_dns_lookups_total 3"));
  r.set_lookup_source([] { return LookupCounts{5, 2, 4, 1}; });
  s = metrics_snapshot(r, nullptr);
  EXPECT_TRUE(contains_line(metrics_text(s), "nfqtrace_asn_lookups_total 4"));
}

TEST(Metrics, LabelValuesAreEscaped) {
  MetricsSnapshot s;
  s.version = "a\"b\\c\nd";
  EXPECT_TRUE(contains_line(metrics_text(s), R"(nfqtrace_build_info{version="a\"b\\c\nd",revision=""} 1)"));
}

TEST(Metrics, DestinationPrefixes) {
  EXPECT_EQ(destination_prefix(*wire::Address::parse("198.51.100.77")), "198.51.100.0/24");
  EXPECT_EQ(destination_prefix(*wire::Address::parse("2001:db8:1:2::9")), "2001:db8:1::/48");
}

TEST(Metrics, TopPrefixesStayBounded) {
  MetricsRecorder r(2);
  for (int i = 0; i < 5; ++i) r.trace(trace_to("192.0.2.1", core::StopReason::reached, 1s), Direction::none);
  for (int i = 0; i < 3; ++i) r.trace(trace_to("198.51.100.1", core::StopReason::gaplimit, 1s, 7), Direction::none);
  // A third prefix takes the least traced place, and its count (3 + 1).
  r.trace(trace_to("203.0.113.5", core::StopReason::reached, 1s, 4), Direction::none);
  for (int i = 0; i < 100; ++i) {
    const std::string dst = "10." + std::to_string(i) + ".0.1";
    r.trace(trace_to(dst.c_str(), core::StopReason::reached, 1s), Direction::none);
  }
  const ResultCounts c = r.counts();
  ASSERT_EQ(c.top.size(), 2u);
  MetricsRecorder small(2);
  small.trace(trace_to("192.0.2.1", core::StopReason::reached, 1s), Direction::none);
  small.trace(trace_to("192.0.2.200", core::StopReason::maxttl, 1s, 9), Direction::none);
  small.trace(trace_to("203.0.113.5", core::StopReason::reached, 1s, 4), Direction::none);
  MetricsSnapshot s;
  s.results = small.counts();
  const std::string text = metrics_text(s);
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_prefix_traces_total{prefix="192.0.2.0/24"} 2)")) << text;
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_prefix_traces_reached_total{prefix="192.0.2.0/24"} 1)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_prefix_last_hops{prefix="192.0.2.0/24"} 9)"));
  EXPECT_TRUE(contains_line(text, R"(nfqtrace_prefix_traces_total{prefix="203.0.113.0/24"} 1)"));
}

TEST(Metrics, ListenAddresses) {
  auto v4 = parse_listen_address("127.0.0.1:9100");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->port, 9100);
  EXPECT_EQ(v4->address.to_string(), "127.0.0.1");
  auto v6 = parse_listen_address("[::1]:9101");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->address.family, wire::Family::v6);
  for (const char* bad : {"", "9100", ":9100", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                          "127.0.0.1:65536", "::1:9100", "[127.0.0.1]:9100", "localhost:9100",
                          "127.0.0.1:91x"})
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
}

// Prometheus' own linter on a full page, when it is installed (Debian's
// prometheus package).
TEST(Metrics, PromtoolAcceptsThePage) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "no promtool";
  MetricsRecorder r(3);
  r.trace(trace_to("192.0.2.7", core::StopReason::reached, 300ms), Direction::none);
  MetricsSnapshot s = metrics_snapshot(r, nullptr);
  s.engine = core::EngineCounters{};
  s.runtime = runtime::RuntimeCounters{};
  s.flows = core::Engine::FlowCounts{};
  s.server_clients = 0;
  const std::string path = ::testing::TempDir() + "nfqtrace_metrics_page.txt";
  std::ofstream(path) << metrics_text(s);
  const std::string command = "promtool check metrics < " + path + " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  std::remove(path.c_str());
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace nfqtrace::cli
