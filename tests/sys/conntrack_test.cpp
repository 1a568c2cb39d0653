// A conntrack mark bit set through ctnetlink makes a connection skip the
// queue (our rules RETURN first for it), and clearing it brings the
// connection back; a connection that does not exist is reported as such.
#include "nfqtrace/sys/conntrack.hpp"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <optional>
#include <thread>

#include "nfqtrace/sys/nflog.hpp"
#include "nfqtrace/sys/nfqueue.hpp"
#include "nfqtrace/sys/rules.hpp"
#include "nfqtrace/sys/tcp.hpp"
#include "test_support.hpp"

namespace nfqtrace::sys {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t bypass_bit = 0x00400000;

struct Connection {
  UniqueFd listener, client, server;
  core::FlowKey flow;  // client -> server
};

Connection connect_loopback() {
  Connection c;
  auto l = tcp_listen(wire::Family::v4, 0);
  EXPECT_TRUE(l);
  c.listener = std::move(*l);
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  getsockname(c.listener.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  auto client = tcp_connect(*wire::Address::parse("127.0.0.1"), ntohs(bound.sin_port));
  EXPECT_TRUE(client);
  c.client = std::move(*client);
  pollfd p{c.client.get(), POLLOUT, 0};
  poll(&p, 1, 2000);
  pollfd q{c.listener.get(), POLLIN, 0};
  poll(&q, 1, 2000);
  auto server = tcp_accept(c.listener.get());
  EXPECT_TRUE(server);
  c.server = std::move(*server);
  c.flow = *connection_flow(c.client.get());
  return c;
}

// Sends a few bytes and counts what the queue hands us (accepting it all).
std::size_t queued_while_sending(NfQueue& queue, Connection& c) {
  const std::string data = "ping\n";
  EXPECT_TRUE(write_some(c.client.get(), data));
  std::size_t seen = 0;
  const auto end = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{queue.fd(), POLLIN, 0};
    if (poll(&p, 1, 50) == 1) {
      auto n = queue.receive([&](const QueuedPacket& qp) { queue.accept(qp.id); });
      EXPECT_TRUE(n);
      seen += *n;
      EXPECT_TRUE(queue.flush_verdicts());
    }
  }
  char buffer[64];
  pollfd s{c.server.get(), POLLIN, 0};
  EXPECT_EQ(poll(&s, 1, 1000), 1);
  auto got = read_some(c.server.get(), buffer);
  EXPECT_TRUE(got && *got && **got == data.size()) << "the data still arrives";
  return seen;
}

// A loopback connection set up as the tracer would: its packets to the
// server go through a queue unless conntrack has the bypass bit for it.
class ConntrackBypass : public ::testing::Test {
 protected:
  // Call under ASSERT_NO_FATAL_FAILURE.
  void queue_the_connection(std::uint16_t queue_id) {
    QueueOptions qo;
    qo.queue_id = queue_id;
    auto opened = NfQueue::open(qo);
    ASSERT_TRUE(opened) << opened.error().message();
    queue.emplace(std::move(*opened));
    RuleSpec spec;
    spec.queue_id = queue_id;
    spec.dports = {c.flow.dport};
    spec.nflog_group = queue_id;
    spec.bypass_mark = bypass_bit;
    auto installed = Rules::install(spec);
    ASSERT_TRUE(installed) << installed.error().message();
    rules.emplace(std::move(*installed));
    auto marker_opened = ConntrackMarker::open();
    ASSERT_TRUE(marker_opened) << marker_opened.error().message();
    marker.emplace(std::move(*marker_opened));
  }

  testing::ScopedEnv backend{"NFQTRACE_RULES_BACKEND", "xtables"};
  Connection c = connect_loopback();
  std::optional<NfQueue> queue;
  std::optional<Rules> rules;
  std::optional<ConntrackMarker> marker;
};

TEST_F(ConntrackBypass, MarkedConnectionSkipsTheQueueUntilTheBitIsCleared) {
  ASSERT_NO_FATAL_FAILURE(queue_the_connection(23));
  EXPECT_GT(queued_while_sending(*queue, c), 0u);
  ASSERT_TRUE(marker->set_bits(c.flow, bypass_bit, true));
  EXPECT_EQ(queued_while_sending(*queue, c), 0u);
  // The reverse direction names the same connection.
  ASSERT_TRUE(marker->set_bits(c.flow.reversed(), bypass_bit, false));
  EXPECT_GT(queued_while_sending(*queue, c), 0u);
}

TEST_F(ConntrackBypass, AMarkedConnectionStillSendsItsFinThroughTheQueue) {
  ASSERT_NO_FATAL_FAILURE(queue_the_connection(24));
  EXPECT_GT(queued_while_sending(*queue, c), 0u);  // conntrack now knows it
  ASSERT_TRUE(marker->set_bits(c.flow, bypass_bit, true));
  EXPECT_EQ(queued_while_sending(*queue, c), 0u);
  ASSERT_EQ(::shutdown(c.client.get(), SHUT_WR), 0);
  bool fin_seen = false;
  const auto end = std::chrono::steady_clock::now() + 1s;
  while (!fin_seen && std::chrono::steady_clock::now() < end) {
    pollfd p{queue->fd(), POLLIN, 0};
    if (poll(&p, 1, 50) != 1) continue;
    ASSERT_TRUE(queue->receive([&](const QueuedPacket& qp) {
      // The TCP flags byte: IPv4 header (20, no options on loopback) + 13.
      if (qp.data.size() > 33 && (qp.data[33] & 0x01)) fin_seen = true;
      queue->accept(qp.id);
    }));
    ASSERT_TRUE(queue->flush_verdicts());
  }
  EXPECT_TRUE(fin_seen);
}

// Dup mode: the connection's packets are copied to the log, not queued. A
// round waiting for the packet of its next wave (bypass, watch and round
// bits) gets that one packet, and the rules themselves then leave the
// connection waiting for its answers past us (bypass and round).
TEST(ConntrackOneCopy, ARoundsNextPacketIsCopiedAloneThenTheConnectionWaitsPastUs) {
  testing::ScopedEnv backend{"NFQTRACE_RULES_BACKEND", "xtables"};
  Connection c = connect_loopback();
  auto log = NfLog::open(27, outgoing_copy_bytes);
  ASSERT_TRUE(log) << log.error().message();
  RuleSpec spec;
  spec.queue_id = 27;
  spec.dports = {c.flow.dport};
  spec.nflog_group = 27;
  spec.bypass_mark = bypass_bit;
  spec.watch_mark = bypass_bit >> 1;
  spec.round_mark = bypass_bit >> 2;
  spec.copy_outgoing = true;
  auto rules = Rules::install(spec);
  ASSERT_TRUE(rules) << rules.error().message();
  auto marker = ConntrackMarker::open();
  ASSERT_TRUE(marker) << marker.error().message();

  // Three segments, each written after the last was acknowledged; the
  // outgoing copies of them.
  const std::string ping = "ping\n";
  const auto copies_of_three_segments = [&](Connection& conn) {
    std::size_t copies = 0;
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(write_some(conn.client.get(), ping));
      std::this_thread::sleep_for(30ms);
      char buffer[64];
      auto got = read_some(conn.server.get(), buffer);
      EXPECT_TRUE(got && *got && **got == ping.size()) << "the data arrives";
      EXPECT_TRUE(log->receive([&](const LoggedPacket& p) { copies += p.outgoing; }));
    }
    return copies;
  };
  EXPECT_EQ(copies_of_three_segments(c), 3u) << "unmarked: every packet";
  const std::uint32_t all = spec.bypass_mark | spec.watch_mark | spec.round_mark;
  ASSERT_TRUE(marker->set_mark(c.flow, all, all));
  EXPECT_EQ(copies_of_three_segments(c), 1u) << "a round's next packet, alone";
  // A connection these rules do not select (another port: another
  // instance's) is neither copied nor has its mark changed.
  Connection other = connect_loopback();
  ASSERT_TRUE(marker->set_mark(other.flow, all, all));
  EXPECT_EQ(copies_of_three_segments(other), 0u);
  auto with_watch = marker->clear_everywhere(spec.bypass_mark | spec.watch_mark);
  ASSERT_TRUE(with_watch) << with_watch.error().message();
  EXPECT_EQ(*with_watch, 1u) << "only the other connection still had the watch bit";
  auto waiting = marker->clear_everywhere(spec.bypass_mark | spec.round_mark);
  ASSERT_TRUE(waiting) << waiting.error().message();
  EXPECT_EQ(*waiting, 1u) << "ours was left waiting for its answers past us";
  EXPECT_EQ(copies_of_three_segments(c), 3u) << "cleared: every packet again";
}

TEST(Conntrack, ClearingEverywhereFindsTheMarkedConnectionsAndOnlyThose) {
  // Load conntrack in this namespace, as our rules would.
  ASSERT_EQ(std::system("iptables -w -t mangle -A OUTPUT -m connmark --mark 1/1 -j RETURN"), 0);
  auto marker = ConntrackMarker::open();
  ASSERT_TRUE(marker) << marker.error().message();
  ASSERT_TRUE(marker->clear_everywhere(bypass_bit));  // what earlier tests left
  Connection marked = connect_loopback();
  Connection other = connect_loopback();
  ASSERT_TRUE(marker->set_bits(marked.flow, bypass_bit, true));
  ASSERT_TRUE(marker->set_bits(other.flow, bypass_bit >> 1, true));  // not ours
  auto cleared = marker->clear_everywhere(bypass_bit);
  ASSERT_TRUE(cleared) << cleared.error().message();
  EXPECT_EQ(*cleared, 1u);
  auto again = marker->clear_everywhere(bypass_bit);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
  // The other bit stays where it was.
  auto others = marker->clear_everywhere(bypass_bit >> 1);
  ASSERT_TRUE(others);
  EXPECT_EQ(*others, 1u);
  EXPECT_EQ(std::system("iptables -w -t mangle -D OUTPUT -m connmark --mark 1/1 -j RETURN"), 0);
}

TEST(Conntrack, UnknownConnectionIsReportedGone) {
  auto marker = ConntrackMarker::open();
  ASSERT_TRUE(marker) << marker.error().message();
  // Load conntrack in this namespace, as our rules would.
  ASSERT_EQ(std::system("iptables -w -t mangle -A OUTPUT -m connmark --mark 1/1 -j RETURN"), 0);
  const core::FlowKey nobody{*wire::Address::parse("192.0.2.1"), *wire::Address::parse("192.0.2.2"), 1, 2};
  auto s = marker->set_bits(nobody, bypass_bit, true);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ENOENT);
  EXPECT_EQ(std::system("iptables -w -t mangle -D OUTPUT -m connmark --mark 1/1 -j RETURN"), 0);
}

}  // namespace
}  // namespace nfqtrace::sys
