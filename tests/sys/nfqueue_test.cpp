// NfQueue against the real kernel queue: packets of a live TCP connection
// pass through us and arrive intact; modified packets arrive as modified;
// the queue's flags and counters behave as the kernel documents.
#include "nfqtrace/sys/nfqueue.hpp"

#include <net/if.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace nfqtrace::sys {
namespace {

using namespace std::chrono_literals;
using namespace testing;  // the helpers of test_support.hpp

// Services a queue from its own thread, as the event loop would, and gives
// each packet the verdict `policy` chooses.
class QueuePump {
 public:
  using Policy = std::function<void(NfQueue&, const QueuedPacket&)>;
  QueuePump(NfQueue& queue, Policy policy)
      : queue_(queue), policy_(std::move(policy)), thread_([this] { run(); }) {}
  ~QueuePump() { stop(); }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::string error() const { return error_; }

 private:
  void run() {
    while (!stopping_) {
      if (!wait_readable(queue_.fd(), 10ms)) continue;
      Result<std::size_t> got = queue_.receive([&](const QueuedPacket& p) { policy_(queue_, p); });
      if (!got) {
        error_ = got.error().message();
        return;
      }
    }
  }
  NfQueue& queue_;
  Policy policy_;
  std::atomic<bool> stopping_{false};
  std::string error_;
  std::thread thread_;
};

// The length the IP header states; 0 when its length field is 0.
std::uint32_t ip_length(wire::Bytes data) {
  if (data.size() >= 20 && data[0] >> 4 == 4) return wire::load16(data, 2);
  if (data.size() >= 40 && data[0] >> 4 == 6 && wire::load16(data, 4) != 0) return 40u + wire::load16(data, 4);
  return 0;
}

std::vector<std::uint8_t> pattern(std::size_t size) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>((i * 7919) >> 3);
  return bytes;
}

// Sends `data` over a TCP connection on loopback and returns what the
// receiving side read. The connection's port is `listener`'s.
std::vector<std::uint8_t> transfer(int family, int listener, const std::vector<std::uint8_t>& data) {
  const Endpoint server = Endpoint::loopback(family, bound_port(listener));
  std::thread sender([&] {
    UniqueFd client(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval timeout{3, 0};  // bounds connect() and send() too
    setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(client.get(), server.get(), server.length) != 0) return;
    std::size_t sent = 0;
    while (sent < data.size()) {
      const std::size_t chunk = std::min<std::size_t>(data.size() - sent, 1000);
      const ssize_t n = ::send(client.get(), data.data() + sent, chunk, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  });
  std::vector<std::uint8_t> received;
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, 3000) == 1) {
    UniqueFd connection(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    timeval timeout{3, 0};
    setsockopt(connection.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::uint8_t chunk[65536];
    for (;;) {
      const ssize_t n = recv(connection.get(), chunk, sizeof chunk, 0);
      if (n <= 0) break;
      received.insert(received.end(), chunk, chunk + n);
    }
  }
  sender.join();
  return received;
}

UniqueFd listening_socket(int family) {
  UniqueFd fd = bound_socket(family, SOCK_STREAM);
  listen(fd.get(), 4);
  return fd;
}

// Request/response over loopback: each of `rounds` messages waits for a
// one-byte answer, so every message travels as one small packet of its own.
// Returns the bytes the server read.
std::vector<std::uint8_t> ping_pong(int listener, const std::vector<std::uint8_t>& message, int rounds) {
  const Endpoint server = Endpoint::loopback(AF_INET, bound_port(listener));
  std::thread client_thread([&] {
    UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval timeout{3, 0};  // bounds connect() too
    setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(client.get(), server.get(), server.length) != 0) return;
    char answer = 0;
    for (int i = 0; i < rounds; ++i) {
      if (::send(client.get(), message.data(), message.size(), MSG_NOSIGNAL) != ssize_t(message.size()) ||
          recv(client.get(), &answer, 1, MSG_WAITALL) != 1) {
        return;
      }
    }
  });
  std::vector<std::uint8_t> received;
  if (wait_readable(listener, 3s)) {
    UniqueFd connection(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    timeval timeout{3, 0};
    setsockopt(connection.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::vector<std::uint8_t> chunk(message.size());
    for (int i = 0; i < rounds; ++i) {
      if (recv(connection.get(), chunk.data(), chunk.size(), MSG_WAITALL) != ssize_t(chunk.size())) break;
      received.insert(received.end(), chunk.begin(), chunk.end());
      if (::send(connection.get(), "k", 1, MSG_NOSIGNAL) != 1) break;
    }
  }
  client_thread.join();
  return received;
}

const char* tool(int family) { return family == AF_INET ? "iptables" : "ip6tables"; }

struct SeenPacket {
  std::size_t captured = 0;
  std::uint32_t wire_len = 0, ip_len = 0, out_ifindex = 0;  // ip_len: from the IP header
  bool gso = false;
};

class NfQueueTcp : public FirewallTest, public ::testing::WithParamInterface<int> {};

TEST_P(NfQueueTcp, ConnectionDataArrivesIntactThroughBatchedAccepts) {
  const int family = GetParam();
  QueueOptions options;
  options.queue_id = 11;
  options.copy_range = 128;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();

  UniqueFd listener = listening_socket(family);
  const std::string port = std::to_string(bound_port(listener.get()));
  ASSERT_TRUE(sh(std::string(tool(family)) + " -w -A OUTPUT -p tcp --dport " + port +
                 " -j NFQUEUE --queue-num 11 --queue-bypass"));

  std::vector<SeenPacket> seen;
  QueuePump pump(*queue, [&](NfQueue& q, const QueuedPacket& p) {
    seen.push_back({p.data.size(), p.wire_len, ip_length(p.data), p.out_ifindex, p.gso});
    q.accept(p.id);
  });
  const std::vector<std::uint8_t> data = pattern(4 << 20);
  const std::vector<std::uint8_t> received = transfer(family, listener.get(), data);
  pump.stop();

  ASSERT_EQ(pump.error(), "");
  EXPECT_EQ(received.size(), data.size());
  EXPECT_TRUE(received == data) << "the connection's bytes changed on the way";
  ASSERT_GT(seen.size(), 2u) << "the connection's packets did not go through the queue";
  const std::uint32_t lo = if_nametoindex("lo");
  bool some_cut = false;
  for (const SeenPacket& p : seen) {
    EXPECT_LE(p.captured, 128u);
    // A GSO packet beyond 64 KiB (BIG TCP, on by default on loopback here)
    // has 0 in its IP length field: wire_len is the only true length.
    if (p.ip_len != 0) {
      EXPECT_EQ(p.wire_len, p.ip_len) << "wire_len must be the whole packet's length";
    } else {
      EXPECT_GT(p.wire_len, 0xffffu);
    }
    EXPECT_EQ(p.out_ifindex, lo);
    some_cut = some_cut || p.wire_len > p.captured;
  }
  EXPECT_TRUE(some_cut) << "4 MiB of data should produce packets longer than the copy range";

  Result<QueueCounters> counters = queue->counters();
  ASSERT_TRUE(counters) << counters.error().message();
  EXPECT_EQ(counters->queue_dropped, 0u);
  EXPECT_EQ(counters->user_dropped, 0u);
}

INSTANTIATE_TEST_SUITE_P(Families, NfQueueTcp, ::testing::Values(AF_INET, AF_INET6),
                         testing::family_name);

using NfQueueTest = FirewallTest;

TEST_F(NfQueueTest, AcceptModifiedPacketsArriveAsModified) {
  QueueOptions options;
  options.queue_id = 12;
  options.copy_range = 0xffff;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();

  UniqueFd listener = listening_socket(AF_INET);
  const std::string port = std::to_string(bound_port(listener.get()));
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p tcp --dport " + port + " -j NFQUEUE --queue-num 12"));
  ASSERT_TRUE(sh("iptables -w -A INPUT -p tcp --dport " + port +
                 " -m ttl --ttl-eq 42 -m comment --comment nfqt-ttl-42"));
  ASSERT_TRUE(sh("iptables -w -A INPUT -p tcp --dport " + port +
                 " -m ttl ! --ttl-eq 42 -m comment --comment nfqt-ttl-other"));

  std::atomic<long> modified = 0, unmodified = 0;
  std::string verdict_error;
  QueuePump pump(*queue, [&](NfQueue& q, const QueuedPacket& p) {
    if (p.data.size() != p.wire_len) {  // cut: cannot be given back whole
      ++unmodified;
      q.accept(p.id);
      return;
    }
    std::vector<std::uint8_t> copy(p.data.begin(), p.data.end());
    if (copy.size() < 40) return ADD_FAILURE() << "short packet";
    copy[8] = 42;
    // The kernel treats a replaced packet as fully checksummed
    // (CHECKSUM_NONE), so a checksum left for offload must be completed.
    testing::fix_checksums(copy);
    if (Status s = q.accept_modified(p.id, copy); !s) verdict_error = s.error().message();
    ++modified;
  });
  const std::vector<std::uint8_t> message = pattern(500);
  const std::vector<std::uint8_t> received = ping_pong(listener.get(), message, 20);
  // The client's last packets (FIN, ACK) may still be on their way.
  for (int i = 0; i < 50 && testing::rule_packets("iptables", "INPUT", "nfqt-ttl-42") < modified; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  pump.stop();
  ASSERT_EQ(pump.error(), "");
  EXPECT_EQ(verdict_error, "");
  std::vector<std::uint8_t> expected;
  for (int i = 0; i < 20; ++i) expected.insert(expected.end(), message.begin(), message.end());
  EXPECT_TRUE(received == expected) << "received " << received.size() << " of " << expected.size() << " bytes";
  EXPECT_EQ(unmodified, 0);
  EXPECT_GE(modified, 22);  // SYN, 20 messages, FIN at least
  EXPECT_EQ(testing::rule_packets("iptables", "INPUT", "nfqt-ttl-42"), modified.load());
  EXPECT_EQ(testing::rule_packets("iptables", "INPUT", "nfqt-ttl-other"), 0)
      << "a packet arrived with its original TTL";
}

// The contract accept_modified() documents: the kernel takes a replaced
// packet as fully checksummed, so a checksum left for offload must be
// completed by us. Kept as a test so a kernel that behaves otherwise is noticed.
TEST_F(NfQueueTest, ReplacedPacketNeedsACompleteChecksum) {
  QueueOptions options;
  options.queue_id = 17;
  options.copy_range = 0xffff;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();
  UniqueFd receiver = bound_socket(AF_INET, SOCK_DGRAM);
  const std::uint16_t port = bound_port(receiver.get());
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p udp --dport " + std::to_string(port) + " -j NFQUEUE --queue-num 17"));
  UniqueFd sender(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const Endpoint to = Endpoint::loopback(AF_INET, port);

  for (const bool complete_checksum : {false, true}) {
    SCOPED_TRACE(complete_checksum ? "checksum completed" : "only the TTL changed");
    ASSERT_EQ(sendto(sender.get(), "datagram", 8, 0, to.get(), to.length), 8);
    ASSERT_TRUE(wait_readable(queue->fd(), 1s));
    bool offloaded = false;
    Result<std::size_t> got = queue->receive([&](const QueuedPacket& p) {
      offloaded = p.checksum_not_ready;
      std::vector<std::uint8_t> copy(p.data.begin(), p.data.end());
      if (copy.size() < 28) return ADD_FAILURE() << "short packet";
      copy[8] = 42;
      if (complete_checksum) {
        testing::fix_checksums(copy);
      } else {  // what a TTL-only rewrite does: the IPv4 header checksum alone
        copy[10] = copy[11] = 0;
        const std::uint16_t sum = testing::internet_checksum(copy.data(), 20);
        copy[10] = static_cast<std::uint8_t>(sum >> 8);
        copy[11] = static_cast<std::uint8_t>(sum);
      }
      EXPECT_TRUE(queue->accept_modified(p.id, copy));
    });
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(*got, 1u);
    ASSERT_TRUE(offloaded) << "loopback UDP should leave its checksum to offload";
    EXPECT_EQ(wait_readable(receiver.get(), 200ms), complete_checksum);
  }
}

TEST_F(NfQueueTest, QueueBoundElsewhereIsRefusedWithAClearMessage) {
  QueueOptions options;
  options.queue_id = 13;
  {
    Result<NfQueue> first = NfQueue::open(options);
    ASSERT_TRUE(first) << first.error().message();
    Result<NfQueue> second = NfQueue::open(options);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message().find("NFQUEUE 13 is already in use by another process"),
              std::string::npos)
        << second.error().message();
    // The failed attempt must not have taken the queue from its owner.
    EXPECT_NE(testing::capture("cat /proc/net/netfilter/nfnetlink_queue").find("   13 "), std::string::npos);
  }
  // Closing unbinds: the queue is free again.
  Result<NfQueue> again = NfQueue::open(options);
  EXPECT_TRUE(again) << again.error().message();
}

// UDP datagrams to a queue of room 1 that nobody reads yet.
struct FullQueue {
  UniqueFd receiver = bound_socket(AF_INET, SOCK_DGRAM);
  std::uint16_t port = bound_port(receiver.get());

  void send_datagrams(int count) const {
    UniqueFd sender(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    const Endpoint to = Endpoint::loopback(AF_INET, port);
    for (int i = 0; i < count; ++i) sendto(sender.get(), "x", 1, 0, to.get(), to.length);
  }
  int datagrams_arrived() const {
    int count = 0;
    char byte = 0;
    while (wait_readable(receiver.get(), 100ms) && recv(receiver.get(), &byte, 1, MSG_DONTWAIT) == 1) ++count;
    return count;
  }
};

TEST_F(NfQueueTest, CountersCountPacketsAFullQueueDropped) {
  QueueOptions options;
  options.queue_id = 14;
  options.max_len = 1;
  options.fail_open = false;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();
  FullQueue full;
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p udp --dport " + std::to_string(full.port) +
                 " -j NFQUEUE --queue-num 14"));

  full.send_datagrams(3);
  Result<QueueCounters> counters = queue->counters();
  ASSERT_TRUE(counters) << counters.error().message();
  EXPECT_EQ(counters->queue_dropped, 2u);
  EXPECT_EQ(counters->user_dropped, 0u);

  std::size_t queued = 0;
  ASSERT_TRUE(wait_readable(queue->fd(), 1s));
  Result<std::size_t> got = queue->receive([&](const QueuedPacket& p) {
    ++queued;
    queue->accept(p.id);
  });
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, 1u);
  EXPECT_EQ(queued, 1u);
  EXPECT_EQ(full.datagrams_arrived(), 1) << "only the queued datagram, once accepted";
}

TEST_F(NfQueueTest, FailOpenLetsPacketsPassWhenTheQueueIsFull) {
  QueueOptions options;
  options.queue_id = 15;
  options.max_len = 1;
  options.fail_open = true;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();
  FullQueue full;
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p udp --dport " + std::to_string(full.port) +
                 " -j NFQUEUE --queue-num 15"));

  full.send_datagrams(3);
  EXPECT_EQ(full.datagrams_arrived(), 2) << "the two that found the queue full pass at once";
  ASSERT_TRUE(wait_readable(queue->fd(), 1s));
  Result<std::size_t> got = queue->receive([&](const QueuedPacket& p) { queue->accept(p.id); });
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, 1u);
  EXPECT_EQ(full.datagrams_arrived(), 1);
  Result<QueueCounters> counters = queue->counters();
  ASSERT_TRUE(counters) << counters.error().message();
  EXPECT_EQ(counters->queue_dropped, 0u);
}

TEST_F(NfQueueTest, ClosingTheQueueLetsUnreadPacketsGo) {
  FullQueue target;
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p udp --dport " + std::to_string(target.port) +
                 " -j NFQUEUE --queue-num 18"));
  {
    QueueOptions options;
    options.queue_id = 18;
    Result<NfQueue> queue = NfQueue::open(options);
    ASSERT_TRUE(queue) << queue.error().message();
    target.send_datagrams(2);
    ASSERT_TRUE(wait_readable(queue->fd(), 1s));
  }  // closed with two packets unread
  EXPECT_EQ(target.datagrams_arrived(), 2) << "unbinding dropped queued packets";
}

TEST_F(NfQueueTest, EveryAcceptedPacketLeavesAndItsMarkIsReported) {
  QueueOptions options;
  options.queue_id = 16;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();
  FullQueue target;
  const std::string port = std::to_string(target.port);
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p udp --dport " + port + " -j MARK --set-mark 0x1234"));
  ASSERT_TRUE(sh("iptables -w -A OUTPUT -p udp --dport " + port + " -j NFQUEUE --queue-num 16"));

  target.send_datagrams(3);
  std::vector<std::uint32_t> marks;
  for (int tries = 0; marks.size() < 3 && tries < 10; ++tries) {
    ASSERT_TRUE(wait_readable(queue->fd(), 1s));
    Result<std::size_t> got = queue->receive([&](const QueuedPacket& p) {
      marks.push_back(p.mark);
      queue->accept(p.id);
    });
    ASSERT_TRUE(got) << got.error().message();
  }
  EXPECT_EQ(marks, (std::vector<std::uint32_t>{0x1234, 0x1234, 0x1234}));
  EXPECT_TRUE(queue->flush_verdicts());  // nothing pending: harmless
  EXPECT_EQ(target.datagrams_arrived(), 3);
}

}  // namespace
}  // namespace nfqtrace::sys
