// The server side of one cooperating connection, driven with a fake clock:
// what the client sees on the wire and when the server lets go of it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nfqtrace/coop/server_session.hpp"
#include "nfqtrace/output/format.hpp"
#include "coop_session_fixtures.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;
using namespace coop_sessions;

namespace {

const std::string hello_line = R"({"type":"hello","version":1,"params":{"maxttl":200}})" "\n";
const std::string filler_line = coop::encode(coop::make_filler(1));

// Ended at the gap limit: the hop at ttl 2 stayed silent.
core::TraceResult trace() {
  core::TraceResult t = server_trace(core::StopReason::gaplimit);
  t.hops.push_back(core::Hop{2, 3, {}, {}});
  return t;
}

struct Server {
  explicit Server(coop::ServerLimits l = {}) : limits(l), session(l, {}, server_flow, at(0ms)) {}

  void client_sends(const std::string& text, core::Duration t) {
    session.on_bytes(std::span<const char>(text.data(), text.size()), at(t));
  }
  // What the server wrote, decoded.
  std::vector<coop::Message> client_reads() { return take_messages(session); }
  // The traces the server was asked to start since the last call.
  std::vector<coop::StartTrace> trace_requests() {
    return only<coop::StartTrace>(take_decisions(session));
  }
  // The client's hello at 0 ms, and the server's answer read.
  void exchange_hellos() {
    client_sends(hello_line, 0ms);
    client_reads();
  }
  std::string error_sent() {
    const auto lines = client_reads();
    if (lines.empty() || !std::holds_alternative<coop::ErrorMessage>(lines.back())) return "";
    return std::get<coop::ErrorMessage>(lines.back()).message;
  }
  // A client whose forward trace runs: filler every `every` up to `until`.
  void client_keeps_talking(core::Duration from, core::Duration until, core::Duration every) {
    for (core::Duration t = from; t < until && !session.should_close(); t += every) {
      client_sends(filler_line, t);
      session.on_timer(at(t));
    }
  }

  coop::ServerLimits limits;
  coop::ServerSession session;
};

template <typename T>
std::size_t count(const std::vector<coop::Message>& messages) {
  return static_cast<std::size_t>(
      std::count_if(messages.begin(), messages.end(),
                    [](const coop::Message& m) { return std::holds_alternative<T>(m); }));
}

}  // namespace

TEST(ServerSession, AValidHelloRequestsTheClampedTraceAndIsAnswered) {
  Server server;
  EXPECT_TRUE(server.trace_requests().empty()) << "nothing before the hello";
  server.client_sends(hello_line, 100ms);

  const auto requests = server.trace_requests();
  ASSERT_EQ(requests.size(), 1u);
  const core::TraceParams& request = requests[0].params;
  EXPECT_EQ(request.max_ttl, 32) << "maxttl 200 clamped";
  EXPECT_FALSE(request.repeat);
  server.client_sends(filler_line, 200ms);
  EXPECT_TRUE(server.trace_requests().empty()) << "once only";

  const auto lines = server.client_reads();
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<coop::ServerHello>(lines[0]));
  const auto& answer = std::get<coop::ServerHello>(lines[0]);
  EXPECT_EQ(answer.version, 1);
  EXPECT_EQ(answer.flow, server_flow);
  EXPECT_EQ(answer.params, coop::request_of(request));
  EXPECT_TRUE(server.session.wants_filler_traffic());
  EXPECT_FALSE(server.session.should_close());
}

TEST(ServerSession, AHelloSplitIntoSingleBytesIsOneHello) {
  Server server;
  for (const char c : hello_line) server.client_sends(std::string(1, c), 10ms);
  EXPECT_EQ(server.trace_requests().size(), 1u);
  EXPECT_EQ(count<coop::ServerHello>(server.client_reads()), 1u);
}

TEST(ServerSession, FillerFlowsAtTheIntervalWhileTheTraceRuns) {
  Server server;
  server.exchange_hellos();
  // The caller's timer may fire early, late or often: one line per interval.
  std::size_t fillers = 0;
  for (core::Duration t = 0ms; t <= 1s; t += 1ms) {
    server.session.on_timer(at(t));
    fillers += count<coop::Filler>(server.client_reads());
  }
  EXPECT_GE(fillers, 19u);
  EXPECT_LE(fillers, 21u);
  ASSERT_TRUE(server.session.poll_timeout());
  EXPECT_LE(*server.session.poll_timeout(), 1s + server.limits.filler_interval);
}

TEST(ServerSession, ALateTimerDoesNotBurst) {
  Server server;
  server.exchange_hellos();
  server.client_sends(filler_line, 5s);
  server.session.on_timer(at(5s));  // 100 intervals late
  EXPECT_EQ(count<coop::Filler>(server.client_reads()), 1u);
}

TEST(ServerSession, FillerWaitsWhileTheClientHasNotReadWhatIsQueued) {
  Server server;
  server.client_sends(hello_line, 0ms);
  // The caller never writes what is unsent: filler stops adding to it.
  for (core::Duration t = 0ms; t < 9s; t += 10ms) server.session.on_timer(at(t));
  EXPECT_LT(server.session.unsent().size(), 4096u + 200u);
  EXPECT_FALSE(server.session.should_close());
}

TEST(ServerSession, HopsStreamAndTheTraceEndsWithDone) {
  Server server;
  server.exchange_hellos();
  server.session.on_hop(hop(1));
  EXPECT_EQ(server.session.unsent(), output::hop_json(hop(1)).dump() + "\n");
  server.client_reads();

  server.session.on_trace(trace(), at(2s));
  EXPECT_EQ(server.session.unsent(),
            output::trace_json(trace()).dump() + "\n" + R"({"type":"done"})" + "\n");
  server.client_reads();
  EXPECT_FALSE(server.session.wants_filler_traffic());

  // No filler, hops or traces after done; the connection stays open for
  // the client's own trace until the client closes it.
  server.client_keeps_talking(2s, 6s, 500ms);
  server.session.on_hop(hop(2));
  server.session.on_trace(trace(), at(6s));
  EXPECT_TRUE(server.client_reads().empty());
  EXPECT_FALSE(server.session.should_close());
  server.session.on_peer_closed(at(6s));
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.session.close_reason(), "finished");
  EXPECT_FALSE(server.session.poll_timeout());
  const auto closes = only<coop::CloseConnection>(take_decisions(server.session));
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].reason, "finished");
  EXPECT_FALSE(closes[0].failed);
}

TEST(ServerSession, AClientBehindANatIsToldSoInItsTraceAndTheServersOwn) {
  // The client's own end is 10.0.0.2:41234; the server sees 198.51.100.7:60000.
  const core::FlowKey seen{addr("192.0.2.7"), addr("198.51.100.7"), 9000, 60000};
  coop::ServerSession session(coop::ServerLimits{}, {}, seen, at(0ms));
  const std::string hello =
      R"({"type":"hello","version":1,"client":{"addr":"10.0.0.2","port":41234}})" "\n";
  session.on_bytes(std::span<const char>(hello.data(), hello.size()), at(0ms));
  core::TraceResult t = trace();
  t.flow = seen;
  session.on_trace(t, at(2s));
  const auto lines = take_messages(session);
  ASSERT_GE(lines.size(), 2u);
  const auto* sent = std::get_if<coop::TraceMessage>(&lines[1]);
  ASSERT_NE(sent, nullptr);
  ASSERT_TRUE(sent->trace.nat);
  EXPECT_EQ(sent->trace.nat->client_sees, "10.0.0.2:41234");
  EXPECT_EQ(sent->trace.nat->server_sees, "198.51.100.7:60000");
  core::TraceResult own = t;
  session.note_nat(own);
  ASSERT_TRUE(own.nat);
  EXPECT_EQ(output::trace_json(own)["nat"]["server_sees"], "198.51.100.7:60000");
  EXPECT_NE(output::trace_text(own).find("NAT: the client is 10.0.0.2:41234, the server sees it as "
                                         "198.51.100.7:60000"),
            std::string::npos);
  // Without a NAT, nothing is added.
  core::TraceResult direct = trace();
  coop::ServerSession plain(coop::ServerLimits{}, {}, server_flow, at(0ms));
  const std::string same = R"({"type":"hello","version":1,"client":{"addr":"10.0.0.2","port":41234}})" "\n";
  plain.on_bytes(std::span<const char>(same.data(), same.size()), at(0ms));
  plain.note_nat(direct);
  EXPECT_FALSE(direct.nat);
}

TEST(ServerSession, ResultsBeforeTheHelloAreNotSent) {
  Server server;
  server.session.on_hop(hop(1));
  server.session.on_trace(trace(), at(1s));
  EXPECT_TRUE(server.session.unsent().empty());
}

namespace {

struct BadFirstLine {
  const char* name;
  std::string bytes;
  const char* named;  // what the error message says
};
void PrintTo(const BadFirstLine& c, std::ostream* os) { *os << c.name; }

}  // namespace

class ServerSessionRefuses : public testing::TestWithParam<BadFirstLine> {};

TEST_P(ServerSessionRefuses, WithAnErrorThenCloses) {
  Server server;
  server.client_sends(GetParam().bytes, 10ms);
  EXPECT_TRUE(server.session.should_close());
  const auto decided = take_decisions(server.session);
  EXPECT_TRUE(only<coop::StartTrace>(decided).empty());
  const std::string error = server.error_sent();
  EXPECT_NE(error.find(GetParam().named), std::string::npos) << error;
  EXPECT_EQ(server.session.close_reason(), error);
  const auto closes = only<coop::CloseConnection>(decided);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].reason, error);
  EXPECT_TRUE(closes[0].failed);
  EXPECT_FALSE(server.session.poll_timeout());
  // Nothing more comes out of a closed session.
  server.client_sends(hello_line, 20ms);
  server.session.on_timer(at(1s));
  EXPECT_TRUE(server.session.unsent().empty());
  EXPECT_TRUE(take_decisions(server.session).empty());
}

INSTANTIATE_TEST_SUITE_P(
    FirstLines, ServerSessionRefuses,
    testing::Values(
        BadFirstLine{"garbage", "GET / HTTP/1.1\r\n", "invalid JSON"},
        BadFirstLine{"array", "[1]\n", "not a JSON object"},
        BadFirstLine{"no_type", "{}\n", "type"},
        BadFirstLine{"bad_field", R"({"type":"hello","version":1,"params":{"maxttl":-5}})" "\n",
                     "params.maxttl"},
        BadFirstLine{"too_long", std::string(16385, 'x'), "longer than 16384"},
        BadFirstLine{"invalid_utf8", "{\"type\":\"\xED\xA0\x80\"}\n", "UTF-8"},
        BadFirstLine{"nul", std::string("{\0}\n", 4), "NUL"},
        BadFirstLine{"filler_first", filler_line, "unexpected filler"},
        BadFirstLine{"unknown_first", R"({"type":"stats"})" "\n", "unexpected stats"},
        BadFirstLine{"done_first", R"({"type":"done"})" "\n", "unexpected done"},
        BadFirstLine{"version_2", R"({"type":"hello","version":2})" "\n",
                     "unsupported version 2"},
        BadFirstLine{"hello_then_garbage", hello_line + "oops\n", "invalid JSON"}),
    [](const testing::TestParamInfo<BadFirstLine>& p) { return std::string(p.param.name); });

TEST(ServerSession, ASecondHelloIsRefused) {
  Server server;
  server.exchange_hellos();
  server.client_sends(hello_line, 1s);
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.error_sent(), "unexpected hello");
}

TEST(ServerSession, ServerMessagesFromTheClientAreRefused) {
  Server server;
  server.exchange_hellos();
  server.client_sends(coop::encode(coop::HopMessage{hop(1)}), 1s);
  EXPECT_EQ(server.error_sent(), "unexpected hop");
}

TEST(ServerSession, UnknownTypesAndFillerAfterTheHelloAreIgnored) {
  Server server;
  server.exchange_hellos();
  server.client_sends(R"({"type":"stats","rtt":[1,2]})" "\n" + filler_line +
                          R"({"type":"hello-v2-extension"})" "\n",
                      1s);
  EXPECT_FALSE(server.session.should_close());
  EXPECT_TRUE(server.client_reads().empty());
}

TEST(ServerSession, AHelloMustArriveWithinTheIdleTimeout) {
  Server server;
  EXPECT_EQ(server.session.poll_timeout(), 10s);
  // Bytes trickling in without a complete line do not extend it.
  for (core::Duration t = 0s; t < 10s; t += 1s) server.client_sends("{", t);
  server.session.on_timer(at(10s));
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.error_sent(), "no hello within 10 s");
}

TEST(ServerSession, ASilentClientIsClosedAfterTheIdleTimeout) {
  Server server;
  server.client_sends(hello_line, 1s);
  server.session.on_timer(at(10s));
  server.session.on_timer(at(10999ms));
  EXPECT_FALSE(server.session.should_close());
  server.session.on_timer(at(11s));
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.error_sent(), "idle: nothing from the client for 10 s");
}

TEST(ServerSession, AClientThatKeepsTalkingReachesTheTimeLimit) {
  Server server;
  server.client_sends(hello_line, 0ms);
  server.client_keeps_talking(0s, 59s, 1s);
  EXPECT_FALSE(server.session.should_close());
  server.client_keeps_talking(59s, 61s, 1s);
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.error_sent(), "time limit of 60 s reached");
}

TEST(ServerSession, TheDeadlineCoversEveryLimit) {
  coop::ServerLimits limits;
  limits.client_time_limit = 3s;
  Server server(limits);
  server.client_sends(hello_line, 0ms);
  server.client_keeps_talking(0s, 2900ms, 100ms);
  server.client_reads();
  // Calling on_timer only at poll_timeout() is enough to enforce the limit.
  core::Duration t = 2900ms;
  for (int i = 0; i < 1000 && !server.session.should_close(); ++i) {
    ASSERT_TRUE(server.session.poll_timeout());
    t = *server.session.poll_timeout();
    server.session.on_timer(at(t));
  }
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(t, 3s);
}

TEST(ServerSession, AClientThatDoesNotReadIsDropped) {
  Server server;
  server.client_sends(hello_line, 0ms);
  for (int i = 0; i < 10000 && !server.session.should_close(); ++i)
    server.session.on_hop(hop(static_cast<std::uint8_t>(1 + i % 30)));
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.session.close_reason(), "client not reading");
  EXPECT_TRUE(server.session.unsent().empty()) << "nothing more to write";
}

TEST(ServerSession, AClientErrorClosesWithoutAnAnswer) {
  Server server;
  server.exchange_hellos();
  server.client_sends(R"({"type":"error","message":"giving up\u001b[2J"})" "\n", 1s);
  EXPECT_TRUE(server.session.should_close());
  EXPECT_TRUE(server.session.unsent().empty());
  EXPECT_EQ(server.session.close_reason(), "client error: giving up?[2J");
}

TEST(ServerSession, AClientClosingEarlyEndsTheSession) {
  Server server;
  server.client_sends(hello_line, 0ms);
  server.session.on_peer_closed(at(1s));
  EXPECT_TRUE(server.session.should_close());
  EXPECT_EQ(server.session.close_reason(),
            "client closed the connection before the trace was done");
}
