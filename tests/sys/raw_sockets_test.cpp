// ProbeSender: probes leave exactly as built (TTL / hop limit, flow label)
// and carry the mark that keeps them out of our queue.
// IcmpReceiver: a real time-exceeded from a router namespace arrives, with
// addresses, hop limit and kernel stamp; other ICMP types are filtered out.
#include "nfqtrace/sys/raw_sockets.hpp"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "nfqtrace/sys/clock.hpp"
#include "nfqtrace/sys/nfqueue.hpp"
#include "test_support.hpp"

#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11  // linux/in6.h: receive the flow information as ancillary data
#endif

namespace nfqtrace::sys {
namespace {

using namespace std::chrono_literals;
using namespace testing;  // the helpers of test_support.hpp

constexpr std::uint32_t probe_mark = 0x4e510000;
constexpr std::uint8_t probe_ttl = 7;
constexpr std::uint32_t probe_flow_label = 0xabcde;

// A UDP datagram to loopback `port`, whole IP header included.
std::vector<std::uint8_t> udp_probe(int family, std::uint16_t port, std::string_view text) {
  const std::size_t ip = family == AF_INET ? 20 : 40;
  std::vector<std::uint8_t> p(ip + 8 + text.size());
  wire::MutableBytes b(p);
  if (family == AF_INET) {
    p[0] = 0x45;
    wire::store16(b, 2, static_cast<std::uint16_t>(p.size()));
    wire::store16(b, 4, 0x1234);
    p[8] = probe_ttl;
    p[9] = IPPROTO_UDP;
    wire::store32(b, 12, INADDR_LOOPBACK);
    wire::store32(b, 16, INADDR_LOOPBACK);
  } else {
    wire::store32(b, 0, (6u << 28) | probe_flow_label);
    wire::store16(b, 4, static_cast<std::uint16_t>(8 + text.size()));
    p[6] = IPPROTO_UDP;
    p[7] = probe_ttl;
    p[23] = 1;  // ::1
    p[39] = 1;  // ::1
  }
  wire::store16(b, ip, 40000);
  wire::store16(b, ip + 2, port);
  wire::store16(b, ip + 4, static_cast<std::uint16_t>(8 + text.size()));
  std::copy(text.begin(), text.end(), p.begin() + static_cast<std::ptrdiff_t>(ip + 8));
  testing::fix_checksums(p);
  return p;
}

class ProbeSenderTest : public FirewallTest, public ::testing::WithParamInterface<int> {};

TEST_P(ProbeSenderTest, ProbeArrivesAsBuiltAndIsNotQueued) {
  const int family = GetParam();
  const bool v4 = family == AF_INET;
  UniqueFd receiver = bound_socket(family, SOCK_DGRAM);
  const int one = 1;
  if (v4) {
    ASSERT_EQ(setsockopt(receiver.get(), IPPROTO_IP, IP_RECVTTL, &one, sizeof one), 0);
  } else {
    ASSERT_EQ(setsockopt(receiver.get(), IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one), 0);
    ASSERT_EQ(setsockopt(receiver.get(), IPPROTO_IPV6, IPV6_FLOWINFO, &one, sizeof one), 0);
  }
  const std::uint16_t port = bound_port(receiver.get());
  const std::string tool = v4 ? "iptables" : "ip6tables";
  const std::string mark = std::to_string(probe_mark) + "/" + std::to_string(probe_mark);
  // As nfqtrace's own rule: everything but our marked probes is queued.
  ASSERT_TRUE(sh(tool + " -w -A OUTPUT -p udp --dport " + std::to_string(port) + " -m mark --mark " +
                 mark + " -m comment --comment nfqt-marked"));
  ASSERT_TRUE(sh(tool + " -w -A OUTPUT -p udp --dport " + std::to_string(port) + " -m mark ! --mark " +
                 mark + " -j NFQUEUE --queue-num 31"));
  QueueOptions options;
  options.queue_id = 31;
  Result<NfQueue> queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();

  Result<ProbeSender> sender = ProbeSender::open(probe_mark);
  ASSERT_TRUE(sender) << sender.error().message();
  const std::vector<std::uint8_t> probe = udp_probe(family, port, "probe");
  Status sent = sender->send(probe, if_nametoindex("lo"));
  ASSERT_TRUE(sent) << sent.error().message();

  ASSERT_TRUE(wait_readable(receiver.get(), 1s)) << "the probe did not arrive";
  std::optional<testing::Datagram> arrived = testing::receive_datagram(receiver.get());
  ASSERT_TRUE(arrived);
  EXPECT_EQ(std::string(arrived->data.begin(), arrived->data.end()), "probe");
  if (v4) {
    const testing::Ancillary* ttl = arrived->find(IPPROTO_IP, IP_TTL);
    ASSERT_NE(ttl, nullptr);
    EXPECT_EQ(ttl->as<int>(), probe_ttl);
  } else {
    const testing::Ancillary* hop_limit = arrived->find(IPPROTO_IPV6, IPV6_HOPLIMIT);
    ASSERT_NE(hop_limit, nullptr);
    EXPECT_EQ(hop_limit->as<int>(), probe_ttl);
    const testing::Ancillary* flow = arrived->find(IPPROTO_IPV6, IPV6_FLOWINFO);
    ASSERT_NE(flow, nullptr);
    EXPECT_EQ(ntohl(flow->as<std::uint32_t>()) & 0xfffff, probe_flow_label);
  }
  EXPECT_EQ(testing::rule_packets(tool.c_str(), "OUTPUT", "nfqt-marked"), 1) << "probe without our mark";
  EXPECT_FALSE(wait_readable(queue->fd(), 50ms)) << "the marked probe was queued";

  // Control: the same datagram from an ordinary socket is queued.
  UniqueFd plain(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const Endpoint to = Endpoint::loopback(family, port);
  ASSERT_EQ(sendto(plain.get(), "plain", 5, 0, to.get(), to.length), 5);
  ASSERT_TRUE(wait_readable(queue->fd(), 1s)) << "the rule does not queue unmarked packets";
  Result<std::size_t> queued = queue->receive([&](const QueuedPacket& p) { queue->accept(p.id); });
  ASSERT_TRUE(queued) << queued.error().message();
  EXPECT_EQ(*queued, 1u);
  ASSERT_TRUE(wait_readable(receiver.get(), 1s));
}

INSTANTIATE_TEST_SUITE_P(Families, ProbeSenderTest, ::testing::Values(AF_INET, AF_INET6),
                         testing::family_name);

TEST(ProbeSenderErrors, RefusesWhatIsNotAnIpPacket) {
  Result<ProbeSender> sender = ProbeSender::open(probe_mark);
  ASSERT_TRUE(sender) << sender.error().message();
  const std::uint8_t not_ip[] = {0x55, 0, 0, 0};
  const std::uint8_t short_v4[] = {0x45, 0, 0, 4};
  EXPECT_EQ(sender->send({}, 0).error().code, EINVAL);
  EXPECT_EQ(sender->send(not_ip, 0).error().code, EINVAL);
  EXPECT_EQ(sender->send(short_v4, 0).error().code, EINVAL);
}

// A host (this namespace) and a router namespace joined by a veth pair; the
// router forwards to a network behind another interface. A packet sent
// there with TTL 1 makes the router answer time-exceeded.
class IcmpReceiverTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    router_ = namespaces_.add("r1");
    ASSERT_TRUE(sh("ip link add nfqt-h0 type veth peer name nfqt-r0 netns " + router_));
    ASSERT_TRUE(sh("ip link set nfqt-h0 up"));
    ASSERT_TRUE(sh("ip -n " + router_ + " link set nfqt-r0 up"));
    // The network behind the router: one end of a veth pair of its own
    // (this kernel has no dummy interfaces).
    ASSERT_TRUE(sh("ip -n " + router_ + " link add nfqt-d0 type veth peer name nfqt-d1"));
    ASSERT_TRUE(sh("ip -n " + router_ + " link set nfqt-d0 up"));
    ASSERT_TRUE(sh("ip -n " + router_ + " link set nfqt-d1 up"));
    if (GetParam() == AF_INET) {
      ASSERT_TRUE(sh("ip netns exec " + router_ + " sysctl -qw net.ipv4.ip_forward=1"));
      ASSERT_TRUE(sh("ip addr add 192.0.2.1/24 dev nfqt-h0"));
      ASSERT_TRUE(sh("ip -n " + router_ + " addr add 192.0.2.2/24 dev nfqt-r0"));
      ASSERT_TRUE(sh("ip -n " + router_ + " addr add 198.51.100.1/24 dev nfqt-d0"));
      ASSERT_TRUE(sh("ip route add 198.51.100.0/24 via 192.0.2.2"));
    } else {
      ASSERT_TRUE(sh("ip netns exec " + router_ + " sysctl -qw net.ipv6.conf.all.forwarding=1"));
      ASSERT_TRUE(sh("ip addr add 2001:db8:1::1/64 dev nfqt-h0 nodad"));
      ASSERT_TRUE(sh("ip -n " + router_ + " addr add 2001:db8:1::2/64 dev nfqt-r0 nodad"));
      ASSERT_TRUE(sh("ip -n " + router_ + " addr add 2001:db8:2::1/64 dev nfqt-d0 nodad"));
      ASSERT_TRUE(sh("ip -6 route add 2001:db8:2::/64 via 2001:db8:1::2"));
    }
  }
  // Deleting a namespace frees its devices later, asynchronously: delete our
  // end of the pair now so the next test can create it again.
  void TearDown() override { testing::sh_quiet("ip link del nfqt-h0"); }
  testing::NamedNamespaces namespaces_{"icmp"};
  std::string router_;
};

// An echo request: its reply is an ICMP type the receiver must filter out.
void ping(int family, const char* address) {
  UniqueFd fd(socket(family, SOCK_RAW | SOCK_CLOEXEC, family == AF_INET ? int{IPPROTO_ICMP} : int{IPPROTO_ICMPV6}));
  std::uint8_t echo[8] = {static_cast<std::uint8_t>(family == AF_INET ? 8 : 128), 0, 0, 0, 0x12, 0x34, 0, 1};
  if (family == AF_INET) {
    const std::uint16_t sum = testing::internet_checksum(echo, sizeof echo);
    echo[2] = static_cast<std::uint8_t>(sum >> 8);
    echo[3] = static_cast<std::uint8_t>(sum);
  }  // ICMPv6 raw sockets fill the checksum in
  const Endpoint to = Endpoint::parse(address, 0);
  sendto(fd.get(), echo, sizeof echo, 0, to.get(), to.length);
}

TEST_P(IcmpReceiverTest, TimeExceededFromARouterArrivesAndOtherTypesDoNot) {
  const int family = GetParam();
  const bool v4 = family == AF_INET;
  Result<IcmpReceiver> receiver = IcmpReceiver::open(v4 ? wire::Family::v4 : wire::Family::v6);
  ASSERT_TRUE(receiver) << receiver.error().message();

  ping(family, v4 ? "192.0.2.2" : "2001:db8:1::2");
  std::this_thread::sleep_for(50ms);  // the echo reply arrives first, and must be ignored
  UniqueFd udp(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const int one_hop = 1;
  ASSERT_EQ(v4 ? setsockopt(udp.get(), IPPROTO_IP, IP_TTL, &one_hop, sizeof one_hop)
               : setsockopt(udp.get(), IPPROTO_IPV6, IPV6_UNICAST_HOPS, &one_hop, sizeof one_hop),
            0);
  const Endpoint to = Endpoint::parse(v4 ? "198.51.100.2" : "2001:db8:2::2", 33434);
  const core::Instant before = now();
  ASSERT_EQ(sendto(udp.get(), "hop", 3, 0, to.get(), to.length), 3);

  std::vector<IcmpDatagram> datagrams;
  std::vector<std::vector<std::uint8_t>> bytes;
  const auto give_up = std::chrono::steady_clock::now() + 2s;
  while (datagrams.empty() && std::chrono::steady_clock::now() < give_up) {
    if (!wait_readable(receiver->fd(), 100ms)) continue;
    Result<std::size_t> got = receiver->receive([&](const IcmpDatagram& d) {
      datagrams.push_back(d);
      bytes.emplace_back(d.data.begin(), d.data.end());
    });
    ASSERT_TRUE(got) << got.error().message();
  }
  const core::Instant after = now();
  ASSERT_EQ(datagrams.size(), 1u) << "expected the time-exceeded alone";
  const IcmpDatagram& d = datagrams[0];
  const std::vector<std::uint8_t>& b = bytes[0];
  EXPECT_GE(d.at.mono, before.mono);
  EXPECT_LE(d.at.mono, after.mono);
  EXPECT_LT(std::chrono::abs(d.at.wall - before.wall), 2s);

  if (v4) {
    EXPECT_EQ(d.family, wire::Family::v4);
    ASSERT_GE(b.size(), 20u + 8u + 28u);
    ASSERT_EQ(b[0] >> 4, 4);
    const std::size_t icmp = std::size_t(b[0] & 0x0f) * 4;
    EXPECT_EQ(b[9], IPPROTO_ICMP);
    EXPECT_EQ(wire::Address::v4(wire::Bytes(b).subspan(12, 4)).to_string(), "192.0.2.2");
    EXPECT_EQ(b[icmp], 11);  // time exceeded
    EXPECT_EQ(b[icmp + 1], 0);  // in transit
    const std::size_t quoted = icmp + 8;
    EXPECT_EQ(wire::Address::v4(wire::Bytes(b).subspan(quoted + 16, 4)).to_string(), "198.51.100.2");
    const std::size_t quoted_udp = quoted + std::size_t(b[quoted] & 0x0f) * 4;
    EXPECT_EQ(wire::load16(b, quoted_udp + 2), 33434);
  } else {
    EXPECT_EQ(d.family, wire::Family::v6);
    ASSERT_GE(b.size(), 8u + 40u + 8u);
    EXPECT_EQ(b[0], 3);  // time exceeded
    EXPECT_EQ(b[1], 0);  // hop limit exceeded in transit
    EXPECT_EQ(d.from.to_string(), "2001:db8:1::2");
    EXPECT_EQ(d.to.to_string(), "2001:db8:1::1");
    EXPECT_EQ(d.hop_limit, 64);  // sent by the router itself: one hop, not decremented
    EXPECT_EQ(wire::Address::v6(wire::Bytes(b).subspan(8 + 24, 16)).to_string(), "2001:db8:2::2");
    EXPECT_EQ(wire::load16(b, 8 + 40 + 2), 33434);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, IcmpReceiverTest, ::testing::Values(AF_INET, AF_INET6),
                         testing::family_name);

}  // namespace
}  // namespace nfqtrace::sys
