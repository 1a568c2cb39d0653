// NfLog against the kernel: logged copies arrive at once, cut to the copy
// range, with the packet's real length and the kernel's arrival stamp.
#include "nfqtrace/sys/nflog.hpp"

#include <net/if.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "nfqtrace/sys/clock.hpp"
#include "test_support.hpp"

namespace nfqtrace::sys {
namespace {

using namespace std::chrono_literals;
using namespace testing;  // the helpers of test_support.hpp

class NfLogFamilies : public FirewallTest, public ::testing::WithParamInterface<int> {};

TEST_P(NfLogFamilies, LoggedCopyArrivesAtOnceWithLengthAndKernelStamp) {
  const int family = GetParam();
  Result<NfLog> log = NfLog::open(21, 64);
  ASSERT_TRUE(log) << log.error().message();

  // The receiving socket asks for kernel stamps, so the kernel stamps every
  // packet and the logged copy carries the same stamp.
  UniqueFd receiver = bound_socket(family, SOCK_DGRAM);
  const int one = 1;
  ASSERT_EQ(setsockopt(receiver.get(), SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one), 0);
  const std::uint16_t port = bound_port(receiver.get());
  // The kernel turns receive stamping on lazily (deferred work): give it
  // time, or the first packets may be stamped by each reader at read time.
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(sh(std::string(family == AF_INET ? "iptables" : "ip6tables") +
                 " -w -A INPUT -p udp --dport " + std::to_string(port) + " -j NFLOG --nflog-group 21"));

  const std::vector<char> payload(300, 'p');
  UniqueFd sender(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const Endpoint to = Endpoint::loopback(family, port);
  const core::Instant before = now();
  ASSERT_EQ(sendto(sender.get(), payload.data(), payload.size(), 0, to.get(), to.length), 300);

  ASSERT_TRUE(wait_readable(log->fd(), 2s)) << "no logged copy";
  const core::Instant readable = now();
  EXPECT_LT(readable.mono - before.mono, 500ms) << "the copy waited for a batch";

  std::vector<LoggedPacket> logged;
  std::vector<std::vector<std::uint8_t>> bytes;
  Result<std::size_t> got = log->receive([&](const LoggedPacket& p) {
    logged.push_back(p);
    bytes.emplace_back(p.data.begin(), p.data.end());
  });
  const core::Instant after = now();
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(*got, 1u);
  ASSERT_EQ(logged.size(), 1u);
  const LoggedPacket& p = logged[0];
  EXPECT_EQ(bytes[0].size(), 64u);
  EXPECT_EQ(bytes[0][0] >> 4, family == AF_INET ? 4 : 6);
  EXPECT_EQ(p.wire_len, (family == AF_INET ? 20u : 40u) + 8u + 300u);
  EXPECT_GE(p.at.mono, before.mono - 1ms);
  EXPECT_LE(p.at.mono, after.mono);

  // The receiver's own kernel stamp of the same packet (µs precision in NFLOG).
  std::optional<testing::Datagram> datagram = testing::receive_datagram(receiver.get());
  ASSERT_TRUE(datagram);
  ASSERT_EQ(datagram->data.size(), 300u);
  const testing::Ancillary* stamped = datagram->find(SOL_SOCKET, SCM_TIMESTAMPNS);
  ASSERT_NE(stamped, nullptr);
  const auto stamp = stamped->as<timespec>();
  const core::Duration socket_stamp = std::chrono::seconds(stamp.tv_sec) + std::chrono::nanoseconds(stamp.tv_nsec);
  EXPECT_LT(std::chrono::abs(p.at.wall - socket_stamp), 1us) << "the copy must carry the kernel's stamp";
}

INSTANTIATE_TEST_SUITE_P(Families, NfLogFamilies, ::testing::Values(AF_INET, AF_INET6),
                         testing::family_name);

// Copies of our own outgoing packets carry outgoing_log_prefix (the peer's
// do not) and the interface they leave by; copies the kernel had to drop,
// our socket buffer full, are counted, not silently missed.
TEST_F(FirewallTest, OutgoingCopiesAreToldApartAndLostCopiesCounted) {
  Result<NfLog> log = NfLog::open(25, outgoing_copy_bytes);
  ASSERT_TRUE(log) << log.error().message();
  UniqueFd receiver = bound_socket(AF_INET, SOCK_DGRAM);
  const std::uint16_t port = bound_port(receiver.get());
  const std::string dport = " -p udp --dport " + std::to_string(port);
  ASSERT_TRUE(sh("iptables -w -A OUTPUT" + dport + " -j NFLOG --nflog-group 25 --nflog-prefix " +
                 std::string(outgoing_log_prefix)));
  ASSERT_TRUE(sh("iptables -w -A INPUT" + dport + " -j NFLOG --nflog-group 25"));

  UniqueFd sender(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const Endpoint to = Endpoint::loopback(AF_INET, port);
  const char byte = 'x';
  ASSERT_EQ(sendto(sender.get(), &byte, 1, 0, to.get(), to.length), 1);
  ASSERT_TRUE(wait_readable(log->fd(), 2s));
  std::this_thread::sleep_for(50ms);  // the INPUT copy follows
  std::vector<std::pair<bool, std::uint32_t>> seen;  // outgoing, out_ifindex
  ASSERT_TRUE(log->receive([&](const LoggedPacket& p) { seen.emplace_back(p.outgoing, p.out_ifindex); }));
  const std::uint32_t lo = ::if_nametoindex("lo");
  EXPECT_EQ(seen, (std::vector<std::pair<bool, std::uint32_t>>{{true, lo}, {false, 0u}}));
  EXPECT_EQ(log->lost(), 0u);

  // A socket buffer of a few copies, and many packets unread.
  const int small = 4096;
  ASSERT_EQ(setsockopt(log->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  constexpr int sent = 200;
  for (int i = 0; i < sent; ++i) ASSERT_EQ(sendto(sender.get(), &byte, 1, 0, to.get(), to.length), 1);
  std::this_thread::sleep_for(100ms);
  std::size_t received = 0;
  ASSERT_TRUE(log->receive([&](const LoggedPacket&) { ++received; }));
  EXPECT_LT(received, 2u * sent);
  // A gap shows with the next copy that arrives.
  ASSERT_EQ(sendto(sender.get(), &byte, 1, 0, to.get(), to.length), 1);
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(log->receive([&](const LoggedPacket&) { ++received; }));
  EXPECT_GT(log->lost(), 0u);
  EXPECT_EQ(received + log->lost(), 2u * (sent + 1)) << "every copy either read or counted lost";
}

TEST(NfLogTest, GroupBoundElsewhereIsRefusedWithAClearMessage) {
  Result<NfLog> first = NfLog::open(22, 64);
  ASSERT_TRUE(first) << first.error().message();
  Result<NfLog> second = NfLog::open(22, 64);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message().find("NFLOG group 22 is already in use"), std::string::npos)
      << second.error().message();
  first = NfLog::open(23, 64);  // closes group 22
  ASSERT_TRUE(first) << first.error().message();
  Result<NfLog> again = NfLog::open(22, 64);
  EXPECT_TRUE(again) << again.error().message();
}

TEST(NfLogTest, NothingPendingReadsNothing) {
  Result<NfLog> log = NfLog::open(24, 64);
  ASSERT_TRUE(log) << log.error().message();
  Result<std::size_t> got = log->receive([](const LoggedPacket&) { ADD_FAILURE(); });
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, 0u);
}

}  // namespace
}  // namespace nfqtrace::sys
