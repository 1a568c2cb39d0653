// seqshift — a firewall that randomises TCP sequence numbers, for the
// namespace test networks (tests/netns/test_seq_rewrite.sh).
//
// Some firewalls (Cisco ASA's "sequence number randomization", pf's
// "modulate state") add a constant to the client's sequence numbers and take
// it off the acknowledgment and SACK numbers coming back. Routers beyond
// such a box quote the shifted sequence number in their ICMP errors, and a
// tracer that matches replies by sequence number sees them as strangers.
//
// A router puts the traced connection's forwarded packets into an NFQUEUE
// (`iptables -t mangle -A FORWARD -p tcp --dport P -j NFQUEUE --queue-num Q`
// and the same with --sport P; ip6tables likewise) and this program:
//   client -> server (TCP destination port SERVER_PORT): seq += OFFSET;
//   server -> client (TCP source port SERVER_PORT), with the ACK flag:
//     ack -= OFFSET, and the edges of every SACK block (option 5) -= OFFSET;
// then recomputes the TCP checksum (the IP header is not touched). Anything
// else, and anything it cannot read (fragments, IPv6 extension headers, a
// cut header, bad options), is accepted unchanged: it fails open. ICMP is
// never queued by the test's rules, so errors quoting the shifted numbers
// pass as the routers sent them — as through the real boxes.
//
// Usage: seqshift QUEUE_NUM SERVER_PORT OFFSET
//   OFFSET: 32 bits, decimal or 0x hex.
// Prints one "ready" line on stdout once the queue is bound and a summary on
// stderr when it ends (SIGTERM or SIGINT).
//
// Built by CMake (tools/testnet/CMakeLists.txt) into <build>/helpers.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "seqshift: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

bool parse_u32(std::string_view text, std::uint32_t& out) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc{} && end == text.data() + text.size();
}

// ---- bytes in network order

std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(std::uint32_t{p[0]} << 8 | p[1]);
}
std::uint32_t get32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
void put16(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>((v >> 8) & 0xff);
  p[1] = static_cast<std::uint8_t>(v & 0xff);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v & 0xffff);
}

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t s = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) s += std::uint32_t{p[i]} << 8 | p[i + 1];
  if (n & 1) s += std::uint32_t{p[n - 1]} << 8;
  return s;
}
std::uint16_t fold(std::uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s & 0xffff);
}

// ---- the rewrite

struct Counts {
  std::uint64_t seen = 0;          // packets the queue handed over
  std::uint64_t to_server = 0;     // seq shifted
  std::uint64_t to_client = 0;     // ack (and SACK) shifted back
  std::uint64_t sack_blocks = 0;   // SACK blocks shifted back
  std::uint64_t untouched = 0;     // neither direction, or no ACK flag
  std::uint64_t unreadable = 0;    // accepted unchanged: could not parse
  std::uint64_t recv_overruns = 0;
  std::uint64_t netlink_errors = 0;
};

enum class Outcome { changed, untouched, unreadable };

// Where the TCP segment of an IP packet starts, and the pseudo-header sum;
// false when it is not a whole, unfragmented TCP segment we can read.
bool locate_tcp(const std::uint8_t* pkt, std::size_t len, std::size_t& tcp_at, std::size_t& tcp_len,
                std::uint32_t& pseudo) {
  if (len < 1) return false;
  const unsigned version = pkt[0] >> 4;
  if (version == 4) {
    if (len < 20) return false;
    const std::size_t ihl = std::size_t{pkt[0] & 0x0fu} * 4;
    const std::size_t total = get16(pkt + 2);
    if (ihl < 20 || total < ihl || total > len) return false;
    if ((get16(pkt + 6) & 0x3fff) != 0) return false;  // a fragment (MF or an offset)
    if (pkt[9] != IPPROTO_TCP) return false;
    tcp_at = ihl;
    tcp_len = total - ihl;
    pseudo = sum16(pkt + 12, 8);  // source and destination
    pseudo += IPPROTO_TCP;
    pseudo += static_cast<std::uint32_t>(tcp_len);
    return true;
  }
  if (version == 6) {
    if (len < 40) return false;
    const std::size_t plen = get16(pkt + 4);
    if (pkt[6] != IPPROTO_TCP) return false;  // extension headers: not read here
    if (40 + plen > len) return false;
    tcp_at = 40;
    tcp_len = plen;
    pseudo = sum16(pkt + 8, 32);
    pseudo += IPPROTO_TCP;
    pseudo += static_cast<std::uint32_t>(tcp_len & 0xffff);
    pseudo += static_cast<std::uint32_t>(tcp_len >> 16);
    return true;
  }
  return false;
}

// Takes `offset` off every SACK block edge; false when the options do not read.
bool unshift_sack(std::uint8_t* opt, std::size_t n, std::uint32_t offset, std::uint64_t& blocks) {
  // First pass: check, so that a bad option list leaves the packet as it was.
  std::size_t found = 0;
  for (int pass = 0; pass < 2; ++pass) {
    std::size_t i = 0;
    while (i < n) {
      const std::uint8_t kind = opt[i];
      if (kind == 0) break;  // end of options
      if (kind == 1) { ++i; continue; }  // no-op
      if (i + 1 >= n) return false;
      const std::size_t olen = opt[i + 1];
      if (olen < 2 || i + olen > n) return false;
      if (kind == 5) {
        if (olen < 10 || (olen - 2) % 8 != 0) return false;
        for (std::size_t b = i + 2; b + 8 <= i + olen; b += 8) {
          if (pass == 0) {
            ++found;
          } else {
            put32(opt + b, get32(opt + b) - offset);
            put32(opt + b + 4, get32(opt + b + 4) - offset);
          }
        }
      }
      i += olen;
    }
  }
  blocks += found;
  return true;
}

Outcome rewrite(std::uint8_t* pkt, std::size_t len, std::uint16_t server_port, std::uint32_t offset,
                Counts& c) {
  std::size_t at = 0, tcp_len = 0;
  std::uint32_t pseudo = 0;
  if (!locate_tcp(pkt, len, at, tcp_len, pseudo) || tcp_len < 20) return Outcome::unreadable;
  std::uint8_t* tcp = pkt + at;
  const std::size_t doff = (std::size_t{tcp[12]} >> 4) * 4;
  if (doff < 20 || doff > tcp_len) return Outcome::unreadable;
  const std::uint16_t sport = get16(tcp), dport = get16(tcp + 2);
  const std::uint8_t flags = tcp[13];
  if (dport == server_port) {
    put32(tcp + 4, get32(tcp + 4) + offset);
    ++c.to_server;
  } else if (sport == server_port && (flags & 0x10) != 0) {
    if (!unshift_sack(tcp + 20, doff - 20, offset, c.sack_blocks)) return Outcome::unreadable;
    put32(tcp + 8, get32(tcp + 8) - offset);
    ++c.to_client;
  } else {
    return Outcome::untouched;
  }
  put16(tcp + 16, 0);
  put16(tcp + 16, fold(sum16(tcp, tcp_len, pseudo)));
  return Outcome::changed;
}

struct Shifter {
  mnl_socket* nl = nullptr;
  unsigned portid = 0;
  unsigned queue = 0;
  std::uint16_t server_port = 0;
  std::uint32_t offset = 0;
  Counts counts;
  // Room for a whole 64 KiB packet in a message, each way.
  std::vector<char> rbuf = std::vector<char>(std::size_t{0xffff} + 8192);
  std::vector<char> wbuf = std::vector<char>(std::size_t{0xffff} + 8192);

  void send(nlmsghdr* nlh, const char* what) {
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die(what);
  }

  void configure() {
    nlmsghdr* nlh = nfq_nlmsg_put(wbuf.data(), NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);  // family is ignored by the kernel
    send(nlh, "bind queue");

    nlh = nfq_nlmsg_put(wbuf.data(), NFQNL_MSG_CONFIG, queue);
    // Whole packets. Without NFQA_CFG_F_GSO the kernel segments GSO packets
    // and completes partial checksums before handing them over, so every
    // packet here has a whole, valid TCP checksum to recompute.
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, 10000);
    send(nlh, "configure queue");
  }

  void verdict(std::uint32_t id, const std::uint8_t* pkt, std::size_t len) {
    nlmsghdr* nlh = nfq_nlmsg_put(wbuf.data(), NFQNL_MSG_VERDICT, queue);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
    if (pkt != nullptr) nfq_nlmsg_verdict_put_pkt(nlh, pkt, static_cast<std::uint32_t>(len));
    send(nlh, "verdict");
  }

  static int on_packet(const nlmsghdr* nlh, void* data) {
    auto* self = static_cast<Shifter*>(data);
    nlattr* attr[NFQA_MAX + 1] = {};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) return MNL_CB_OK;
    const auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
    const std::uint32_t id = ntohl(ph->packet_id);
    ++self->counts.seen;
    if (attr[NFQA_PAYLOAD] == nullptr) {
      ++self->counts.unreadable;
      self->verdict(id, nullptr, 0);
      return MNL_CB_OK;
    }
    // Rewritten in place, in the receive buffer; the verdict is built in the
    // other one.
    const std::size_t len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
    auto* pkt = static_cast<std::uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD]));
    bool cut = false;  // only part of the packet handed over: leave it alone
    if (attr[NFQA_CAP_LEN] != nullptr) cut = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) != len;
    Outcome o = Outcome::unreadable;
    if (!cut) o = rewrite(pkt, len, self->server_port, self->offset, self->counts);
    switch (o) {
      case Outcome::changed: self->verdict(id, pkt, len); break;
      case Outcome::untouched: ++self->counts.untouched; self->verdict(id, nullptr, 0); break;
      case Outcome::unreadable: ++self->counts.unreadable; self->verdict(id, nullptr, 0); break;
    }
    return MNL_CB_OK;
  }

  void receive() {
    for (;;) {
      ssize_t n = recv(mnl_socket_get_fd(nl), rbuf.data(), rbuf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno == ENOBUFS) {  // the kernel could not hand us some packets
          ++counts.recv_overruns;
          continue;
        }
        die("recv");
      }
      errno = 0;
      if (mnl_cb_run(rbuf.data(), static_cast<size_t>(n), 0, portid, on_packet, this) < 0) {
        if (++counts.netlink_errors <= 5)
          std::fprintf(stderr, "seqshift: netlink error: %s\n", std::strerror(errno));
      }
    }
  }

  void run() {
    pollfd pfd{mnl_socket_get_fd(nl), POLLIN, 0};
    while (!g_stop) {
      int ready = poll(&pfd, 1, -1);
      if (ready < 0 && errno != EINTR) die("poll");
      if (ready > 0) receive();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t queue = 0, port = 0, offset = 0;
  if (argc != 4 || !parse_u32(argv[1], queue) || queue > 65535 || !parse_u32(argv[2], port) ||
      port == 0 || port > 65535 || !parse_u32(argv[3], offset)) {
    std::fprintf(stderr, "usage: seqshift QUEUE_NUM SERVER_PORT OFFSET (OFFSET: 32 bits, decimal or 0x hex)\n");
    return 2;
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: poll returns EINTR and the loop ends
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  Shifter s;
  s.queue = queue;
  s.server_port = static_cast<std::uint16_t>(port);
  s.offset = offset;
  s.nl = mnl_socket_open(NETLINK_NETFILTER);
  if (s.nl == nullptr) die("mnl_socket_open");
  if (mnl_socket_bind(s.nl, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
  s.portid = mnl_socket_get_portid(s.nl);

  int rcvbuf = 8 << 20;
  if (setsockopt(mnl_socket_get_fd(s.nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(mnl_socket_get_fd(s.nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  s.configure();
  std::printf("seqshift: queue %u server port %u offset %u (0x%08x) ready\n", queue, port, offset, offset);
  std::fflush(stdout);

  s.run();
  const Counts& c = s.counts;
  std::fprintf(stderr,
               "seqshift: seen %llu, to the server (seq +%u) %llu, to the client (ack/SACK -%u) %llu "
               "with %llu SACK blocks, untouched %llu, unreadable %llu, receive overruns %llu, "
               "netlink errors %llu\n",
               static_cast<unsigned long long>(c.seen), offset, static_cast<unsigned long long>(c.to_server),
               offset, static_cast<unsigned long long>(c.to_client),
               static_cast<unsigned long long>(c.sack_blocks), static_cast<unsigned long long>(c.untouched),
               static_cast<unsigned long long>(c.unreadable), static_cast<unsigned long long>(c.recv_overruns),
               static_cast<unsigned long long>(c.netlink_errors));
  mnl_socket_close(s.nl);
  return 0;
}
