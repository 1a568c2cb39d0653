// mplsext — makes a namespace router look like an MPLS label switching
// router: its ICMP time-exceeded messages get an RFC 4950 MPLS label stack
// extension (RFC 4884), as a router that forwarded the expiring packet by
// label would add.
//
// The kernels here cannot route MPLS, so the router puts its own
// time-exceeded errors into an NFQUEUE
//   iptables  -t mangle -A OUTPUT -p icmp      --icmp-type   time-exceeded -j NFQUEUE --queue-num Q
//   ip6tables -t mangle -A OUTPUT -p ipv6-icmp --icmpv6-type time-exceeded -j NFQUEUE --queue-num Q
// and this program rewrites each of them: the quoted "original datagram" is
// zero-padded to 128 bytes (or cut to 128 bytes, as routers that add
// extensions commonly do), its length is written in the ICMP header (ICMPv4
// byte 5 in 32-bit words, ICMPv6 byte 4 in 64-bit words), an extension
// structure with one MPLS label stack object (class 1, c-type 1) follows, and
// the lengths and checksums (IPv4 header, ICMP / ICMPv6 with its
// pseudo-header) are made right. The packet is accepted with the new
// payload. Anything it cannot parse is accepted unchanged (fail open).
//
// Usage: mplsext QUEUE_NUM LABEL[/TC/S/TTL][,LABEL[/TC/S/TTL]...]
//   the label stack, top first; TC defaults to 0, S to 1 for the last entry
//   and 0 for the others, TTL to 1.
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

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "mplsext: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

template <typename T>
bool parse_uint(std::string_view text, T& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && end == text.data() + text.size();
}

struct Entry {
  std::uint32_t label = 0;  // 20 bits
  unsigned tc = 0;          // 3 bits
  unsigned s = 0;           // 1 bit
  unsigned ttl = 1;         // 8 bits
};

// "LABEL[/TC/S/TTL],..." (each of TC, S, TTL may be left out from the right).
std::optional<std::vector<Entry>> parse_stack(std::string_view text) {
  std::vector<Entry> stack;
  std::vector<bool> s_given;
  while (true) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    std::string_view fields[4];
    std::size_t n = 0;
    while (true) {
      if (n == 4) return std::nullopt;
      const std::size_t slash = item.find('/');
      fields[n++] = item.substr(0, slash);
      if (slash == std::string_view::npos) break;
      item.remove_prefix(slash + 1);
    }
    Entry e;
    if (!parse_uint(fields[0], e.label) || e.label > 0xfffff) return std::nullopt;
    if (n > 1 && (!parse_uint(fields[1], e.tc) || e.tc > 7)) return std::nullopt;
    if (n > 2 && (!parse_uint(fields[2], e.s) || e.s > 1)) return std::nullopt;
    if (n > 3 && (!parse_uint(fields[3], e.ttl) || e.ttl > 255)) return std::nullopt;
    stack.push_back(e);
    s_given.push_back(n > 2);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  // At most 16 entries: the object stays small (and so does the packet).
  if (stack.empty() || stack.size() > 16) return std::nullopt;
  for (std::size_t i = 0; i < stack.size(); ++i)
    if (!s_given[i]) stack[i].s = i + 1 == stack.size() ? 1 : 0;
  return stack;
}

// ------------------------------------------------------------ checksums

std::uint32_t sum_add(std::uint32_t sum, const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}

std::uint16_t sum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v & 0xff);
}

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

// ------------------------------------------------------------ the rewrite

constexpr std::size_t quote_len = 128;  // RFC 4884: at least 128, a multiple of 4 and of 8

// The extension structure: header (version 2, checksum) and one MPLS label
// stack object, incoming stack (class 1, c-type 1).
std::vector<std::uint8_t> extension(const std::vector<Entry>& stack) {
  std::vector<std::uint8_t> ext(4 + 4 + 4 * stack.size(), 0);
  ext[0] = 2 << 4;
  put16(&ext[4], static_cast<std::uint16_t>(4 + 4 * stack.size()));
  ext[6] = 1;
  ext[7] = 1;
  for (std::size_t i = 0; i < stack.size(); ++i) {
    const Entry& e = stack[i];
    const std::uint32_t word = e.label << 12 | e.tc << 9 | e.s << 8 | e.ttl;
    std::uint8_t* p = &ext[8 + 4 * i];
    p[0] = static_cast<std::uint8_t>(word >> 24);
    p[1] = static_cast<std::uint8_t>(word >> 16);
    p[2] = static_cast<std::uint8_t>(word >> 8);
    p[3] = static_cast<std::uint8_t>(word);
  }
  put16(&ext[2], sum_fold(sum_add(0, ext.data(), ext.size())));
  return ext;
}

enum class Outcome { rewritten_v4, rewritten_v6, not_ours, bad };

// Rewrites `pkt` (a whole IPv4 or IPv6 packet) into `out`.
Outcome rewrite(const std::uint8_t* pkt, std::size_t len, const std::vector<std::uint8_t>& ext,
                std::vector<std::uint8_t>& out) {
  if (len < 1) return Outcome::bad;
  const unsigned version = pkt[0] >> 4;
  if (version == 4) {
    if (len < 20) return Outcome::bad;
    const std::size_t ihl = std::size_t{pkt[0] & 0x0fu} * 4;
    const std::size_t total = get16(pkt + 2);
    if (ihl < 20 || total < ihl + 8 || total > len) return Outcome::bad;
    if (pkt[9] != 1) return Outcome::not_ours;                   // ICMP
    if ((get16(pkt + 6) & 0x3fff) != 0) return Outcome::not_ours;  // a fragment
    const std::uint8_t* icmp = pkt + ihl;
    if (icmp[0] != 11) return Outcome::not_ours;                  // time exceeded
    if (icmp[5] != 0) return Outcome::not_ours;                   // already has a length
    const std::size_t quote_have = total - ihl - 8;
    out.assign(pkt, pkt + ihl + 8);
    out.insert(out.end(), icmp + 8, icmp + 8 + std::min(quote_have, quote_len));
    out.resize(ihl + 8 + quote_len, 0);
    out.insert(out.end(), ext.begin(), ext.end());
    std::uint8_t* ip = out.data();
    std::uint8_t* m = ip + ihl;
    put16(ip + 2, static_cast<std::uint16_t>(out.size()));
    put16(ip + 10, 0);
    put16(ip + 10, sum_fold(sum_add(0, ip, ihl)));
    m[5] = static_cast<std::uint8_t>(quote_len / 4);
    put16(m + 2, 0);
    put16(m + 2, sum_fold(sum_add(0, m, out.size() - ihl)));
    return Outcome::rewritten_v4;
  }
  if (version == 6) {
    if (len < 48) return Outcome::bad;
    const std::size_t payload = get16(pkt + 4);
    if (40 + payload > len || payload < 8) return Outcome::bad;
    if (pkt[6] != 58) return Outcome::not_ours;  // ICMPv6 right after the header
    const std::uint8_t* icmp = pkt + 40;
    if (icmp[0] != 3) return Outcome::not_ours;  // time exceeded
    if (icmp[4] != 0) return Outcome::not_ours;  // already has a length
    const std::size_t quote_have = payload - 8;
    out.assign(pkt, pkt + 48);
    out.insert(out.end(), icmp + 8, icmp + 8 + std::min(quote_have, quote_len));
    out.resize(48 + quote_len, 0);
    out.insert(out.end(), ext.begin(), ext.end());
    std::uint8_t* ip = out.data();
    std::uint8_t* m = ip + 40;
    const std::size_t mlen = out.size() - 40;
    put16(ip + 4, static_cast<std::uint16_t>(mlen));
    m[4] = static_cast<std::uint8_t>(quote_len / 8);
    put16(m + 2, 0);
    // Pseudo-header: source, destination, upper-layer length, next header.
    std::uint32_t sum = sum_add(0, ip + 8, 32);
    sum += static_cast<std::uint32_t>(mlen >> 16) + static_cast<std::uint32_t>(mlen & 0xffff);
    sum += 58;
    put16(m + 2, sum_fold(sum_add(sum, m, mlen)));
    return Outcome::rewritten_v6;
  }
  return Outcome::bad;
}

// ------------------------------------------------------------ the queue

struct Rewriter {
  mnl_socket* nl = nullptr;
  unsigned portid = 0;
  unsigned queue = 0;
  std::vector<std::uint8_t> ext;
  std::uint64_t seen = 0, rewritten4 = 0, rewritten6 = 0, passed = 0, unparsable = 0,
                recv_overruns = 0, netlink_errors = 0;
  // MNL_SOCKET_BUFFER_SIZE is a long (from sysconf).
  std::vector<char> buf = std::vector<char>(static_cast<std::size_t>(MNL_SOCKET_BUFFER_SIZE));
  std::vector<char> out_buf = std::vector<char>(0xffff + 4096);
  std::vector<std::uint8_t> packet;

  void send(nlmsghdr* nlh, const char* what) {
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die(what);
  }

  void configure() {
    nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);  // family is ignored by the kernel
    send(nlh, "bind queue");

    nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);  // whole packets
    nfq_nlmsg_cfg_put_qmaxlen(nlh, 10000);
    send(nlh, "configure queue");
  }

  void verdict(std::uint32_t id, const std::uint8_t* payload, std::size_t len) {
    nlmsghdr* nlh = nfq_nlmsg_put(out_buf.data(), NFQNL_MSG_VERDICT, queue);
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
    if (payload != nullptr) nfq_nlmsg_verdict_put_pkt(nlh, payload, static_cast<std::uint32_t>(len));
    send(nlh, "verdict");
  }

  static int on_packet(const nlmsghdr* nlh, void* data) {
    auto* self = static_cast<Rewriter*>(data);
    nlattr* attr[NFQA_MAX + 1] = {};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) return MNL_CB_OK;
    const auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
    const std::uint32_t id = ntohl(ph->packet_id);
    ++self->seen;
    Outcome outcome = Outcome::bad;
    if (attr[NFQA_PAYLOAD] != nullptr) {
      const auto* pkt = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD]));
      const std::size_t len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
      // A copy cut short (NFQA_CAP_LEN) cannot be rewritten whole.
      const bool cut = attr[NFQA_CAP_LEN] != nullptr && ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > len;
      if (!cut) outcome = rewrite(pkt, len, self->ext, self->packet);
    }
    switch (outcome) {
      case Outcome::rewritten_v4:
      case Outcome::rewritten_v6:
        ++(outcome == Outcome::rewritten_v4 ? self->rewritten4 : self->rewritten6);
        self->verdict(id, self->packet.data(), self->packet.size());
        break;
      case Outcome::not_ours:
        ++self->passed;
        self->verdict(id, nullptr, 0);
        break;
      case Outcome::bad:
        ++self->unparsable;
        self->verdict(id, nullptr, 0);
        break;
    }
    return MNL_CB_OK;
  }

  // Reads every message that is waiting, without blocking.
  void receive() {
    for (;;) {
      ssize_t n = recv(mnl_socket_get_fd(nl), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        if (errno == ENOBUFS) {  // the kernel could not hand us some packets
          ++recv_overruns;
          continue;
        }
        die("recv");
      }
      errno = 0;
      if (mnl_cb_run(buf.data(), static_cast<size_t>(n), 0, portid, on_packet, this) < 0) {
        // An error the kernel reported (say, for a verdict): say it, go on.
        if (++netlink_errors <= 5) std::fprintf(stderr, "mplsext: netlink error: %s\n", std::strerror(errno));
      }
    }
  }

  void run() {
    pollfd pfd{mnl_socket_get_fd(nl), POLLIN, 0};
    while (!g_stop) {
      int ready = ppoll(&pfd, 1, nullptr, nullptr);
      if (ready < 0 && errno != EINTR) die("ppoll");
      if (ready > 0) receive();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  unsigned queue = 0;
  std::optional<std::vector<Entry>> stack;
  if (argc != 3 || !parse_uint(std::string_view(argv[1]), queue) || queue > 65535 ||
      !(stack = parse_stack(argv[2]))) {
    std::fprintf(stderr, "usage: mplsext QUEUE_NUM LABEL[/TC/S/TTL][,LABEL[/TC/S/TTL]...]\n");
    return 2;
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;  // no SA_RESTART: ppoll returns EINTR and the loop ends
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  Rewriter rw;
  rw.queue = queue;
  rw.ext = extension(*stack);
  rw.nl = mnl_socket_open(NETLINK_NETFILTER);
  if (rw.nl == nullptr) die("mnl_socket_open");
  if (mnl_socket_bind(rw.nl, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
  rw.portid = mnl_socket_get_portid(rw.nl);

  int rcvbuf = 4 << 20;
  if (setsockopt(mnl_socket_get_fd(rw.nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(mnl_socket_get_fd(rw.nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  rw.configure();
  std::string text;
  for (const Entry& e : *stack) {
    if (!text.empty()) text += ',';
    text += std::to_string(e.label) + '/' + std::to_string(e.tc) + '/' + std::to_string(e.s) + '/' +
            std::to_string(e.ttl);
  }
  std::printf("mplsext: queue %u stack %s ready\n", queue, text.c_str());
  std::fflush(stdout);

  rw.run();
  std::fprintf(stderr,
               "mplsext: queued %llu, rewritten ipv4 %llu, ipv6 %llu, passed unchanged %llu, "
               "unparsable %llu, receive overruns %llu, netlink errors %llu\n",
               static_cast<unsigned long long>(rw.seen), static_cast<unsigned long long>(rw.rewritten4),
               static_cast<unsigned long long>(rw.rewritten6), static_cast<unsigned long long>(rw.passed),
               static_cast<unsigned long long>(rw.unparsable),
               static_cast<unsigned long long>(rw.recv_overruns),
               static_cast<unsigned long long>(rw.netlink_errors));
  mnl_socket_close(rw.nl);
  return 0;
}
