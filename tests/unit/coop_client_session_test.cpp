// The client side, against scripted server lines and against the real
// ServerSession through an in-memory connection.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nfqtrace/coop/client_session.hpp"
#include "nfqtrace/coop/server_session.hpp"
#include "nfqtrace/output/format.hpp"
#include "coop_session_fixtures.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;
using namespace coop_sessions;

namespace {

core::TraceResult trace() { return server_trace(core::StopReason::reached); }

std::string server_hello() {
  coop::TraceRequest effective;
  effective.max_ttl = 30;
  return coop::encode(coop::ServerHello{1, effective, server_flow});
}

struct Client {
  Client() : session(asked(), 50ms, 30s, at(0ms)) {}
  static coop::TraceRequest asked() {
    coop::TraceRequest p;
    p.ttl_repeat = 2;
    return p;
  }
  void server_sends(const std::string& text, core::Duration t = 1s) {
    session.on_bytes(std::span<const char>(text.data(), text.size()), at(t));
  }
  // What the client wrote, decoded.
  std::vector<coop::Message> server_reads() { return take_messages(session); }
  // What the client decided so far.
  const std::vector<coop::ClientOutput>& decided() {
    for (auto& d : take_decisions(session)) decisions.push_back(std::move(d));
    return decisions;
  }
  std::vector<core::HopEvent> reverse_hops() { return only<core::HopEvent>(decided()); }
  std::vector<core::TraceResult> reverse_traces() { return only<core::TraceResult>(decided()); }
  std::vector<coop::CloseConnection> closes() { return only<coop::CloseConnection>(decided()); }

  coop::ClientSession session;
  std::vector<coop::ClientOutput> decisions;
};

}  // namespace

TEST(ClientSession, StartsWithItsHello) {
  Client client;
  const auto lines = client.server_reads();
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<coop::Hello>(lines[0]));
  EXPECT_EQ(std::get<coop::Hello>(lines[0]).version, 1);
  EXPECT_EQ(std::get<coop::Hello>(lines[0]).params, Client::asked());
}

TEST(ClientSession, CollectsTheReverseTraceAndFinishesWhenBothTracesEnded) {
  Client client;
  client.server_reads();
  client.server_sends(server_hello() + coop::encode(coop::make_filler(1)));
  EXPECT_EQ(client.session.server_flow(), server_flow);
  ASSERT_TRUE(client.session.effective_params());
  EXPECT_EQ(client.session.effective_params()->max_ttl, 30u);

  // Lines may arrive cut anywhere.
  const std::string rest = coop::encode(coop::HopMessage{hop(1)}) +
                           coop::encode(coop::TraceMessage{trace()}) + coop::encode(coop::Done{});
  for (std::size_t i = 0; i < rest.size(); i += 7) client.server_sends(rest.substr(i, 7));
  ASSERT_EQ(client.reverse_hops().size(), 1u);
  EXPECT_EQ(output::hop_json(client.reverse_hops()[0]), output::hop_json(hop(1)));
  ASSERT_EQ(client.reverse_traces().size(), 1u);
  EXPECT_EQ(output::trace_json(client.reverse_traces()[0]), output::trace_json(trace()));
  EXPECT_FALSE(client.session.finished()) << "its own trace still runs";
  EXPECT_TRUE(client.closes().empty());

  client.session.on_forward_trace_ended();
  EXPECT_TRUE(client.session.finished());
  EXPECT_FALSE(client.session.failure());
  EXPECT_FALSE(client.session.poll_timeout());
  // In order: the reverse hop, the reverse trace, then the close, once.
  const auto& decided = client.decided();
  ASSERT_EQ(decided.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<core::HopEvent>(decided[0]));
  EXPECT_TRUE(std::holds_alternative<core::TraceResult>(decided[1]));
  ASSERT_TRUE(std::holds_alternative<coop::CloseConnection>(decided[2]));
  EXPECT_EQ(std::get<coop::CloseConnection>(decided[2]).reason, "finished");
  EXPECT_FALSE(std::get<coop::CloseConnection>(decided[2]).failed);
  client.session.on_peer_closed(at(3s));
  EXPECT_EQ(client.closes().size(), 1u) << "closed once";
}

TEST(ClientSession, SendsFillerUntilFinishedAtMostOneAnInterval) {
  Client client;
  client.server_reads();
  client.server_sends(server_hello(), 10ms);
  client.session.on_forward_trace_ended();  // waiting for the server only
  std::size_t fillers = 0;
  for (core::Duration t = 0ms; t <= 1s; t += 1ms) {
    client.session.on_timer(at(t));
    for (const auto& m : client.server_reads()) fillers += std::holds_alternative<coop::Filler>(m);
  }
  EXPECT_GE(fillers, 19u);
  EXPECT_LE(fillers, 21u);

  client.server_sends(coop::encode(coop::TraceMessage{trace()}) + coop::encode(coop::Done{}));
  EXPECT_TRUE(client.session.finished());
  client.session.on_timer(at(2s));
  EXPECT_TRUE(client.server_reads().empty());
}

TEST(ClientSession, AServerErrorBeforeItsHelloIsARefusal) {
  Client client;
  client.server_sends(
      coop::encode(coop::ErrorMessage{"unsupported version 1 (this server speaks 2)"}));
  ASSERT_TRUE(client.session.failure());
  EXPECT_EQ(*client.session.failure(),
            "server refused: unsupported version 1 (this server speaks 2)");
  EXPECT_TRUE(client.session.should_close());
  EXPECT_FALSE(client.session.finished());
  ASSERT_EQ(client.closes().size(), 1u);
  EXPECT_TRUE(client.closes()[0].failed);
  EXPECT_EQ(client.closes()[0].reason, *client.session.failure());
}

TEST(ClientSession, AServerErrorLaterIsReportedAsSuch) {
  Client client;
  client.server_sends(server_hello() +
                      coop::encode(coop::ErrorMessage{"time limit of 60 s reached"}));
  ASSERT_TRUE(client.session.failure());
  EXPECT_EQ(*client.session.failure(), "server error: time limit of 60 s reached");
}

TEST(ClientSession, TheServerClosingBeforeDoneIsAFailure) {
  Client client;
  client.server_sends(server_hello() + coop::encode(coop::HopMessage{hop(1)}));
  client.session.on_peer_closed(at(2s));
  ASSERT_TRUE(client.session.failure());
  EXPECT_EQ(*client.session.failure(), "server closed the connection before its trace was done");
  EXPECT_EQ(client.reverse_hops().size(), 1u) << "what arrived is still there";
}

TEST(ClientSession, TheServerClosingAfterDoneIsFine) {
  Client client;
  client.server_sends(server_hello() + coop::encode(coop::TraceMessage{trace()}) +
                      coop::encode(coop::Done{}));
  client.session.on_peer_closed(at(2s));
  EXPECT_FALSE(client.session.failure());
  client.session.on_forward_trace_ended();
  EXPECT_TRUE(client.session.finished());
}

TEST(ClientSession, TimesOutWaitingForTheServer) {
  Client client;
  client.server_reads();
  client.server_sends(server_hello());
  ASSERT_TRUE(client.session.poll_timeout());
  EXPECT_LE(*client.session.poll_timeout(), 30s);
  for (core::Duration t = 0s; t < 30s; t += 100ms) client.session.on_timer(at(t));
  EXPECT_FALSE(client.session.failure());
  client.server_reads();
  client.session.on_timer(at(30s));
  ASSERT_TRUE(client.session.failure());
  EXPECT_EQ(*client.session.failure(), "timeout waiting for the server");
  // The server is told why the client goes away.
  const auto lines = client.server_reads();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(std::get<coop::ErrorMessage>(lines[0]).message, "timeout waiting for the server");
}

namespace {

struct Violation {
  const char* name;
  std::string server_bytes;
  const char* named;
};
void PrintTo(const Violation& c, std::ostream* os) { *os << c.name; }

}  // namespace

class ClientSessionViolation : public testing::TestWithParam<Violation> {};

TEST_P(ClientSessionViolation, FailsAndTellsTheServer) {
  Client client;
  client.server_reads();
  client.server_sends(GetParam().server_bytes);
  ASSERT_TRUE(client.session.failure()) << GetParam().name;
  EXPECT_TRUE(client.session.failure()->starts_with("protocol violation: "))
      << *client.session.failure();
  EXPECT_NE(client.session.failure()->find(GetParam().named), std::string::npos)
      << *client.session.failure();
  const auto lines = client.server_reads();
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(std::holds_alternative<coop::ErrorMessage>(lines.back()));
}

INSTANTIATE_TEST_SUITE_P(
    ServerLines, ClientSessionViolation,
    testing::Values(
        Violation{"garbage", "<html>\n", "invalid JSON"},
        Violation{"hop_before_hello", coop::encode(coop::HopMessage{hop(1)}), "unexpected hop"},
        Violation{"hello_without_flow", coop::encode(coop::Hello{}), "without flow"},
        Violation{"hello_version_2", coop::encode(coop::ServerHello{2, {}, server_flow}),
                  "version 2"},
        Violation{"second_hello", server_hello() + server_hello(), "unexpected hello"},
        Violation{"hop_of_another_flow",
                  server_hello() + coop::encode(coop::HopMessage{hop(1, server_flow.reversed())}),
                  "another flow"},
        Violation{"hop_after_done",
                  server_hello() + coop::encode(coop::Done{}) +
                      coop::encode(coop::HopMessage{hop(1)}),
                  "after done"},
        Violation{"bad_hop", server_hello() + R"({"type":"hop","ttl":1})" "\n", "bad field"},
        Violation{"invalid_utf8", server_hello() + "{\"type\":\"\xC0\x80\"}\n", "UTF-8"}),
    [](const testing::TestParamInfo<Violation>& p) { return std::string(p.param.name); });

TEST(ClientSession, UnknownServerMessagesAreIgnored) {
  Client client;
  client.server_sends(server_hello() + R"({"type":"progress","ttl":4})" "\n");
  EXPECT_FALSE(client.session.failure());
}

TEST(ClientSession, AcceptsTraceLinesFarLongerThanTheServersLineLimit) {
  // maxttl 32 x ttlrepeat 5 IPv6 replies: about 25 KB in one line.
  core::TraceResult big = trace();
  big.flow = core::FlowKey{addr("2001:db8:ffff::7"), addr("2001:db8:eeee::2"), 9000, 41234};
  big.hops.clear();
  for (std::uint8_t ttl = 1; ttl <= 32; ++ttl) {
    core::Hop h{ttl, 5, {}, {}};
    for (int i = 0; i < 5; ++i) {
      core::Reply r = hop(ttl).reply;
      r.addr = addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
      r.reply_ttl = 250;
      h.replies.push_back(r);
    }
    big.hops.push_back(h);
  }
  const std::string line = coop::encode(coop::TraceMessage{big});
  ASSERT_GT(line.size(), coop::LineReader::default_max_line);

  Client client;
  client.server_sends(coop::encode(coop::ServerHello{1, {}, big.flow}) + line);
  EXPECT_FALSE(client.session.failure()) << *client.session.failure();
  EXPECT_EQ(client.reverse_traces().size(), 1u);
}

// The two sessions through an in-memory connection: the exchange the two
// programs run, minus sockets and the tracer.
TEST(CoopExchange, ClientAndServerSessionsCompleteTogether) {
  coop::ServerSession server({}, core::TraceParams{}, server_flow, at(0ms));
  coop::TraceRequest asked;
  asked.max_ttl = 100;
  asked.mode = core::Mode::mangle;
  coop::ClientSession client(asked, 50ms, 30s, at(0ms));

  const auto pump = [&](core::Duration t) {
    for (int i = 0; i < 2; ++i) {
      const std::string up(client.unsent());
      client.sent(up.size());
      if (!up.empty()) server.on_bytes(std::span<const char>(up.data(), up.size()), at(t));
      const std::string down(server.unsent());
      server.sent(down.size());
      if (!down.empty()) client.on_bytes(std::span<const char>(down.data(), down.size()), at(t));
    }
  };

  pump(1ms);
  const auto starts = only<coop::StartTrace>(take_decisions(server));
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].params.max_ttl, 32);
  EXPECT_EQ(starts[0].params.mode, core::Mode::mangle);
  ASSERT_TRUE(client.effective_params());
  EXPECT_EQ(client.effective_params()->max_ttl, 32u) << "the client learns what it got";

  std::size_t hops_seen = 0, traces_seen = 0;
  for (core::Duration t = 10ms; t < 3s; t += 10ms) {
    server.on_timer(at(t));
    client.on_timer(at(t));
    if (t == 500ms) server.on_hop(hop(1));
    if (t == 1s) client.on_forward_trace_ended();
    if (t == 2s) server.on_trace(trace(), at(t));
    pump(t);
    const auto decided = take_decisions(client);
    hops_seen += only<core::HopEvent>(decided).size();
    traces_seen += only<core::TraceResult>(decided).size();
    if (client.finished()) break;
  }
  EXPECT_EQ(hops_seen, 1u);
  EXPECT_EQ(traces_seen, 1u);
  ASSERT_TRUE(client.finished()) << client.failure().value_or("");
  EXPECT_FALSE(server.should_close());
  server.on_peer_closed(at(2s));
  EXPECT_EQ(server.close_reason(), "finished");
}
