// TCP helpers: endpoint syntax, and a real loopback connection in both
// families whose flow reads the same from either end.
#include "nfqtrace/sys/tcp.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

namespace nfqtrace::sys {
namespace {

TEST(TcpEndpoint, ParsesHostPortAndBracketedIpv6) {
  auto a = parse_endpoint("server.example:9000");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "server.example");
  EXPECT_EQ(a->port, 9000);
  auto b = parse_endpoint("[2001:db8::1]:443");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "2001:db8::1");
  EXPECT_EQ(b->port, 443);
  for (const char* bad : {"", "host", "host:", ":80", "host:0", "host:65536", "host:8x",
                          "2001:db8::1:443", "[2001:db8::1]443", "[2001:db8::1]:"})
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
}

bool wait_fd(int fd, short events) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, 2000) == 1;
}

class TcpLoopback : public ::testing::TestWithParam<wire::Family> {};

TEST_P(TcpLoopback, FlowSeenFromBothEndsIsTheSameConnection) {
  const wire::Family family = GetParam();
  auto listener = tcp_listen(family, 0);
  ASSERT_TRUE(listener) << listener.error().message();
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ASSERT_EQ(getsockname(listener->get(), reinterpret_cast<sockaddr*>(&bound), &len), 0);
  const std::uint16_t port = ntohs(family == wire::Family::v4
                                       ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  auto loopback = *wire::Address::parse(family == wire::Family::v4 ? "127.0.0.1" : "::1");
  auto client = tcp_connect(loopback, port);
  ASSERT_TRUE(client) << client.error().message();
  ASSERT_TRUE(wait_fd(client->get(), POLLOUT));
  ASSERT_TRUE(connect_result(client->get()));
  ASSERT_TRUE(wait_fd(listener->get(), POLLIN));
  auto server = tcp_accept(listener->get());
  ASSERT_TRUE(server && server->valid());

  auto c = connection_flow(client->get());
  auto s = connection_flow(server->get());
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->reversed(), *s);
  EXPECT_EQ(c->dport, port);
  EXPECT_EQ(c->src.family, family);

  const std::string hello = "hello\n";
  auto wrote = write_some(client->get(), hello);
  ASSERT_TRUE(wrote);
  EXPECT_EQ(*wrote, hello.size());
  ASSERT_TRUE(wait_fd(server->get(), POLLIN));
  char buf[16];
  auto got = read_some(server->get(), buf);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(std::string(buf, **got), hello);
  client->reset();
  ASSERT_TRUE(wait_fd(server->get(), POLLIN));
  auto eof = read_some(server->get(), buf);
  ASSERT_TRUE(eof && *eof);
  EXPECT_EQ(**eof, 0u);  // the peer closed
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, TcpLoopback,
                         ::testing::Values(wire::Family::v4, wire::Family::v6),
                         [](const auto& p) { return p.param == wire::Family::v4 ? "IPv4" : "IPv6"; });

TEST(TcpResolve, LiteralsNeedNoLookupAndUnknownNamesFailClearly) {
  auto a = resolve("192.0.2.1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->front().to_string(), "192.0.2.1");
  auto bad = resolve("no-such-host.invalid");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("cannot resolve no-such-host.invalid"), std::string::npos);
}

}  // namespace
}  // namespace nfqtrace::sys
