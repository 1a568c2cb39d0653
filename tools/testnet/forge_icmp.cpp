// forge: floods a host with forged ICMP/ICMPv6 errors that quote a TCP flow
// (addresses and ports known, sequence numbers not), interleaved with
// malformed ones; or sends it forged TCP RST and FIN segments of that flow.
// Raw socket with the IP header included (spoofed source). The forger of
// tests/netns/test_forged_icmp.sh; built by CMake (tools/testnet/CMakeLists.txt)
// into <build>/helpers/forge_icmp.
//   forge 4|6 FAKE_FROM TO QUOTED_SRC QUOTED_DST SPORT DPORT VALID MALFORMED SECONDS SEED
//     Prints one summary line: "sent valid V malformed M errors E start T0 end
//     T1" (T0/T1: wall clock, seconds since the epoch) and the count of each kind.
//   forge tcp 4|6 FROM TO SPORT DPORT COUNT SECONDS SEED
//     COUNT segments FROM:SPORT -> TO:DPORT, RST and FIN+ACK in turn, random
//     sequence and acknowledgment numbers, spread over SECONDS.
//   forge shifted 4|6 FAKE_FROM TO QSRC QDST SPORT DPORT COUNT SECONDS SEED SHIFT SWEEP
//         [LEN_MIN LEN_MAX [current|first]]
//     A flood that looks like a sequence-shifting firewall's routers: sniffs
//     the flow QSRC:SPORT -> QDST:DPORT on this host's interfaces (a packet
//     socket; waits up to 10 s for its first data segment), then sends COUNT
//     ICMP time-exceeded errors over SECONDS that quote it with the sequence
//     number the forger last saw on the wire (the end of the newest data
//     segment, or with "first" the first segment's start) + SHIFT + k, k
//     sweeping -SWEEP..SWEEP; IP lengths of probes with LEN_MIN..LEN_MAX
//     (default 1..16) payload bytes, in turn; random IP IDs (IPv4, 8-byte
//     quotes: ports and sequence number) or the whole made-up packet with
//     random payload bytes (IPv6: the flow's TCP header as sniffed, its flow
//     label). Prints "sent shifted N errors E start T0 end T1" and a line on
//     what it saw of the flow.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace {

using Buf = std::vector<std::uint8_t>;
std::mt19937_64 rng;
std::uint32_t rnd(std::uint32_t lo, std::uint32_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
}
std::uint8_t rnd8(std::uint32_t lo, std::uint32_t hi) {  // a byte: [lo, hi], hi <= 255
  return static_cast<std::uint8_t>(rnd(lo, hi));
}
void put16(Buf& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v & 0xff);
}
void put32(Buf& b, std::size_t at, std::uint32_t v) { put16(b, at, v >> 16); put16(b, at + 2, v & 0xffff); }

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t s = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) s += std::uint32_t{p[i]} << 8 | p[i + 1];
  if (n & 1) s += std::uint32_t{p[n - 1]} << 8;
  return s;
}
std::uint16_t fold(std::uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

struct Args {
  int fam;
  in6_addr from6, to6, qsrc6, qdst6;
  in_addr from4, to4, qsrc4, qdst4;
  std::uint16_t sport, dport;
};
Args a;

// ---- quoted packets (what the router says it dropped)

Buf tcp_quote(std::size_t bytes) {  // first BYTES of a TCP header (+ payload)
  Buf t(bytes, 0);
  Buf full(std::max<std::size_t>(bytes, 20), 0);
  put16(full, 0, a.sport);
  put16(full, 2, a.dport);
  put32(full, 4, rnd(0, 0xffffffffu));  // sequence: unknown to the attacker
  put32(full, 8, rnd(0, 0xffffffffu));
  full[12] = 0x50;
  full[13] = 0x18;  // ACK PSH
  put16(full, 14, rnd(0, 0xffff));
  for (std::size_t i = 20; i < full.size(); ++i) full[i] = rnd8(0, 255);
  std::copy(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(bytes), t.begin());
  return t;
}

Buf ip4_header(std::size_t payload_len_field, std::uint8_t proto = 6) {
  Buf h(20, 0);
  h[0] = 0x45;
  put16(h, 2, static_cast<std::uint32_t>(20 + payload_len_field));
  put16(h, 4, rnd(0, 0xffff));            // IP ID: random
  put16(h, 6, rnd(0, 1) ? 0x4000 : 0);    // DF or not
  h[8] = rnd8(0, 2);                      // TTL left at the router
  h[9] = proto;
  std::memcpy(&h[12], &a.qsrc4, 4);
  std::memcpy(&h[16], &a.qdst4, 4);
  put16(h, 10, fold(sum16(h.data(), 20)));
  return h;
}

Buf ip6_header(std::size_t payload_len_field, std::uint8_t next = 6) {
  Buf h(40, 0);
  put32(h, 0, (6u << 28) | rnd(0, 0xfffff));  // random flow label
  put16(h, 4, static_cast<std::uint32_t>(payload_len_field));
  h[6] = next;
  h[7] = rnd8(0, 2);
  std::memcpy(&h[8], &a.qsrc6, 16);
  std::memcpy(&h[24], &a.qdst6, 16);
  return h;
}

Buf cat(Buf x, const Buf& y) { x.insert(x.end(), y.begin(), y.end()); return x; }

// A plausible quote: IP header with a random length, 8 (RFC 792) to 48 bytes
// of TCP.
Buf good_quote() {
  static const std::size_t tcp_bytes[] = {8, 8, 12, 20, 32, 48};
  const std::size_t tb = tcp_bytes[rnd(0, 5)];
  const std::size_t plen = rnd(20, 1440);  // random IP length
  return a.fam == 4 ? cat(ip4_header(plen), tcp_quote(tb)) : cat(ip6_header(plen), tcp_quote(tb));
}

// ---- ICMP messages (header + body), checksum filled in by finish()

Buf icmp(std::uint8_t type, std::uint8_t code, const Buf& body, std::uint8_t len_units = 0) {
  Buf m(8, 0);
  m[0] = type;
  m[1] = code;
  if (a.fam == 4) m[5] = len_units; else m[4] = len_units;
  return cat(m, body);
}

std::uint8_t te() { return a.fam == 4 ? 11 : 3; }
std::uint8_t unreach() { return a.fam == 4 ? 3 : 1; }
std::uint8_t unreach_code() {
  static const std::uint8_t c4[] = {0, 1, 3, 10, 13};
  static const std::uint8_t c6[] = {0, 1, 3, 4, 5};
  return a.fam == 4 ? c4[rnd(0, 4)] : c6[rnd(0, 4)];
}

// RFC 4884: quote padded to 128 bytes, then an extension structure.
Buf with_extension(Buf quote, std::uint8_t version, std::size_t ext_len) {
  quote.resize(128, 0);
  Buf ext(ext_len, 0);
  if (ext_len >= 1) ext[0] = static_cast<std::uint8_t>(version << 4);
  if (ext_len >= 8) {  // one object header: length 4, class 1 (MPLS), c-type 1
    put16(ext, 4, 4); ext[6] = 1; ext[7] = 1;
  }
  if (ext_len >= 4) put16(ext, 2, fold(sum16(ext.data(), ext.size())));
  return cat(quote, ext);
}
std::uint8_t units128() { return a.fam == 4 ? 32 : 16; }

Buf valid_message(std::string& kind) {
  const std::uint32_t r = rnd(0, 9);
  if (r < 5) { kind = "time-exceeded"; return icmp(te(), 0, good_quote()); }
  if (r < 9) { kind = "unreachable"; return icmp(unreach(), unreach_code(), good_quote()); }
  kind = "time-exceeded+rfc4884";
  return icmp(te(), 0, with_extension(good_quote(), 2, 8), units128());
}

Buf malformed_message(long i, std::string& kind) {
  const bool v4 = a.fam == 4;
  switch (i % 16) {
    case 0: kind = "no quote"; return icmp(te(), 0, {});
    case 1: kind = "IP header cut short"; { Buf q = good_quote(); q.resize(v4 ? 12 : 30); return icmp(te(), 0, q); }
    case 2: kind = "4 bytes of TCP"; { Buf q = good_quote(); q.resize(v4 ? 24 : 44); return icmp(unreach(), unreach_code(), q); }
    case 3: kind = v4 ? "IHL 15 beyond the quote" : "hop-by-hop header beyond the quote";
      if (v4) { Buf h = ip4_header(40); h[0] = 0x4f; return icmp(te(), 0, cat(h, tcp_quote(8))); }
      else { Buf ext(8, 0); ext[0] = 6; ext[1] = 255; return icmp(te(), 0, cat(cat(ip6_header(100, 0), ext), tcp_quote(8))); }
    case 4: kind = v4 ? "IHL 3" : "9 extension headers";
      if (v4) { Buf h = ip4_header(40); h[0] = 0x43; return icmp(te(), 0, cat(h, tcp_quote(8))); }
      else {
        Buf q = ip6_header(200, 60);
        for (int n = 0; n < 9; ++n) { Buf e(8, 0); e[0] = n == 8 ? 6 : 60; q = cat(q, e); }
        return icmp(te(), 0, cat(q, tcp_quote(8)));
      }
    case 5: kind = "quoted length below the header";
      if (v4) { Buf h = ip4_header(0); put16(h, 2, 10); return icmp(te(), 0, cat(h, tcp_quote(20))); }
      else { Buf ext(8, 0); ext[0] = 6; return icmp(te(), 0, cat(cat(ip6_header(4, 60), ext), tcp_quote(8))); }
    case 6: kind = "wrong quoted IP version";
      { Buf q = good_quote(); q[0] = v4 ? 0x65 : 0x45; return icmp(te(), 0, q); }
    case 7: kind = "quoted UDP";
      return icmp(te(), 0, v4 ? cat(ip4_header(28, 17), tcp_quote(8)) : cat(ip6_header(28, 17), tcp_quote(8)));
    case 8: kind = "RFC 4884 length below 128 bytes";
      return icmp(te(), 0, with_extension(good_quote(), 2, 8), 1);
    case 9: kind = "RFC 4884 length beyond the message";
      return icmp(unreach(), unreach_code(), good_quote(), 255);
    case 10: kind = "RFC 4884 extension too short";
      return icmp(te(), 0, with_extension(good_quote(), 2, 4), units128());
    case 11: kind = "RFC 4884 extension version 1";
      return icmp(te(), 0, with_extension(good_quote(), 1, 16), units128());
    case 12: kind = "quoted later fragment";
      if (v4) { Buf h = ip4_header(60); put16(h, 6, 0x0010); return icmp(te(), 0, cat(h, tcp_quote(8))); }
      else { Buf f(8, 0); f[0] = 6; put16(f, 2, 0x0010 << 3); return icmp(te(), 0, cat(cat(ip6_header(60, 44), f), tcp_quote(8))); }
    case 13: kind = "reassembly time exceeded (code 1)";
      return icmp(te(), 1, good_quote());
    case 14: kind = "quoted length 65535, 8-byte quote";
      if (v4) { Buf h = ip4_header(0); put16(h, 2, 65535); return icmp(te(), 0, cat(h, tcp_quote(8))); }
      else return icmp(te(), 0, cat(ip6_header(65535), tcp_quote(8)));
    default: kind = "random garbage quote";
      { Buf q(rnd(1, 200)); for (auto& x : q) x = rnd8(0, 255); return icmp(rnd(0, 1) ? te() : unreach(), rnd8(0, 1), q); }
  }
}

// Outer header + checksums.
Buf finish(Buf m) {
  if (a.fam == 4) {
    put16(m, 2, 0);
    put16(m, 2, fold(sum16(m.data(), m.size())));
    Buf h(20, 0);
    h[0] = 0x45;
    put16(h, 2, static_cast<std::uint32_t>(20 + m.size()));
    put16(h, 4, rnd(1, 0xffff));
    h[8] = rnd8(50, 64);
    h[9] = 1;
    std::memcpy(&h[12], &a.from4, 4);
    std::memcpy(&h[16], &a.to4, 4);
    put16(h, 10, fold(sum16(h.data(), 20)));
    return cat(h, m);
  }
  put16(m, 2, 0);
  Buf pseudo(40, 0);
  std::memcpy(&pseudo[0], &a.from6, 16);
  std::memcpy(&pseudo[16], &a.to6, 16);
  put32(pseudo, 32, static_cast<std::uint32_t>(m.size()));
  pseudo[39] = 58;
  put16(m, 2, fold(sum16(m.data(), m.size(), sum16(pseudo.data(), 40))));
  Buf h(40, 0);
  put32(h, 0, 6u << 28);
  put16(h, 4, static_cast<std::uint32_t>(m.size()));
  h[6] = 58;
  h[7] = rnd8(50, 64);
  std::memcpy(&h[8], &a.from6, 16);
  std::memcpy(&h[24], &a.to6, 16);
  return cat(h, m);
}

double wall() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

bool parse(int fam, const char* s, in_addr& v4, in6_addr& v6) {
  return fam == 4 ? inet_pton(AF_INET, s, &v4) == 1 : inet_pton(AF_INET6, s, &v6) == 1;
}

// Whole IP packets (header included: the source is spoofed) to a.to4 / a.to6.
// fd < 0 when the raw socket could not be opened.
struct RawSender {
  int fd = socket(a.fam == 4 ? AF_INET : AF_INET6, SOCK_RAW, IPPROTO_RAW);
  sockaddr_storage to{};
  socklen_t tolen = 0;
  RawSender() {
    if (a.fam == 4) {
      auto* s = reinterpret_cast<sockaddr_in*>(&to);
      s->sin_family = AF_INET; s->sin_addr = a.to4; tolen = sizeof *s;
    } else {
      auto* s = reinterpret_cast<sockaddr_in6*>(&to);
      s->sin6_family = AF_INET6; s->sin6_addr = a.to6; tolen = sizeof *s;
    }
  }
  bool send(const Buf& pkt) const {
    return sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&to), tolen) >= 0;
  }
};

}  // namespace

// forge tcp ...: RST and FIN+ACK segments with random sequence numbers.
int forge_tcp(int argc, char** argv) {
  if (argc != 10) {
    std::fprintf(stderr, "usage: %s tcp 4|6 FROM TO SPORT DPORT COUNT SECONDS SEED\n", argv[0]);
    return 2;
  }
  a.fam = std::atoi(argv[2]);
  if ((a.fam != 4 && a.fam != 6) || !parse(a.fam, argv[3], a.from4, a.from6) ||
      !parse(a.fam, argv[4], a.to4, a.to6)) {
    std::fprintf(stderr, "forge: bad family or address\n");
    return 2;
  }
  const auto sport = static_cast<std::uint16_t>(std::atoi(argv[5])), dport = static_cast<std::uint16_t>(std::atoi(argv[6]));
  const long count = std::atol(argv[7]);
  const double seconds = std::atof(argv[8]);
  rng.seed(std::strtoull(argv[9], nullptr, 10));
  const RawSender out;
  if (out.fd < 0) { std::perror("forge: socket"); return 1; }
  const std::size_t al = a.fam == 4 ? 4 : 16;
  const void* src = a.fam == 4 ? static_cast<const void*>(&a.from4) : &a.from6;
  const void* dst = a.fam == 4 ? static_cast<const void*>(&a.to4) : &a.to6;
  long sent = 0, errors = 0;
  for (long i = 0; i < count; ++i) {
    Buf t(20, 0);
    put16(t, 0, sport);
    put16(t, 2, dport);
    put32(t, 4, rnd(0, 0xffffffffu));
    put32(t, 8, rnd(0, 0xffffffffu));
    t[12] = 0x50;
    t[13] = i % 2 == 0 ? 0x04 : 0x11;  // RST, FIN+ACK
    put16(t, 14, 502);
    Buf pseudo(2 * al, 0);
    std::memcpy(&pseudo[0], src, al);
    std::memcpy(&pseudo[al], dst, al);
    const Buf tail = a.fam == 4 ? Buf{0, 6, 0, 20} : Buf{0, 0, 0, 20, 0, 0, 0, 6};
    pseudo = cat(pseudo, tail);
    put16(t, 16, fold(sum16(t.data(), 20, sum16(pseudo.data(), pseudo.size()))));
    Buf h(a.fam == 4 ? 20 : 40, 0);
    if (a.fam == 4) {
      h[0] = 0x45; put16(h, 2, 40); put16(h, 4, rnd(1, 0xffff)); h[8] = 61; h[9] = 6;
      std::memcpy(&h[12], src, 4); std::memcpy(&h[16], dst, 4);
      put16(h, 10, fold(sum16(h.data(), 20)));
    } else {
      put32(h, 0, 6u << 28); put16(h, 4, 20); h[6] = 6; h[7] = 61;
      std::memcpy(&h[8], src, 16); std::memcpy(&h[24], dst, 16);
    }
    const Buf pkt = cat(h, t);
    if (!out.send(pkt)) {
      ++errors;
      std::perror("forge: sendto");
    } else {
      ++sent;
    }
    if (i + 1 < count) usleep(static_cast<useconds_t>(seconds * 1e6 / static_cast<double>(count)));
  }
  std::printf("sent tcp %ld errors %ld\n", sent, errors);
  return errors == 0 ? 0 : 1;
}

namespace {

// What the forger sees of the flow on the wire (client -> server).
struct Sniffed {
  bool seen = false;
  std::uint32_t first_seq = 0;  // start of the first data segment
  std::uint32_t end = 0;        // end of the newest data (highest seq + length)
  Buf tcp_header;               // the first data segment's TCP header, options included
  std::uint32_t flow_label = 0; // IPv6
  bool df = true;               // IPv4
  long segments = 0;
};

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(std::uint32_t{p[0]} << 8 | p[1]); }
std::uint32_t get32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// One packet from the packet socket (starting at its IP header): a data
// segment of the flow updates what we know.
void sniff_one(const std::uint8_t* p, std::size_t n, Sniffed& s) {
  std::size_t l4 = 0, l4_len = 0;
  if (a.fam == 4) {
    if (n < 20 || (p[0] >> 4) != 4 || p[9] != 6) return;
    const std::size_t ihl = std::size_t{p[0] & 0x0fu} * 4;
    const std::size_t total = get16(p + 2);
    if (ihl < 20 || total < ihl || total > n || (get16(p + 6) & 0x1fff) != 0) return;
    if (std::memcmp(p + 12, &a.qsrc4, 4) != 0 || std::memcmp(p + 16, &a.qdst4, 4) != 0) return;
    l4 = ihl;
    l4_len = total - ihl;
  } else {
    if (n < 40 || (p[0] >> 4) != 6 || p[6] != 6) return;
    const std::size_t plen = get16(p + 4);
    if (40 + plen > n) return;
    if (std::memcmp(p + 8, &a.qsrc6, 16) != 0 || std::memcmp(p + 24, &a.qdst6, 16) != 0) return;
    l4 = 40;
    l4_len = plen;
  }
  const std::uint8_t* t = p + l4;
  if (l4_len < 20 || get16(t) != a.sport || get16(t + 2) != a.dport) return;
  const std::size_t doff = (std::size_t{t[12]} >> 4) * 4;
  if (doff < 20 || doff > l4_len || doff == l4_len) return;  // no data
  const std::uint32_t seq = get32(t + 4);
  const auto len = static_cast<std::uint32_t>(l4_len - doff);
  ++s.segments;
  if (!s.seen) {
    s.seen = true;
    s.first_seq = seq;
    s.end = seq + len;
    s.tcp_header.assign(t, t + doff);
    if (a.fam == 4) s.df = (get16(p + 6) & 0x4000) != 0;
    else s.flow_label = get32(p) & 0xfffff;
    return;
  }
  // Later than what we have (modulo 2^32): the connection went on.
  if (static_cast<std::int32_t>(seq + len - s.end) > 0) s.end = seq + len;
}

// Reads what is waiting on the packet socket, waiting up to TIMEOUT_MS for
// the first of it.
void sniff(int fd, Sniffed& s, int timeout_ms) {
  static std::vector<std::uint8_t> buf(1 << 17);
  pollfd pfd{fd, POLLIN, 0};
  if (poll(&pfd, 1, timeout_ms) <= 0) return;
  for (;;) {
    const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) return;
    sniff_one(buf.data(), static_cast<std::size_t>(n), s);
  }
}

// The quote of a made-up probe: the flow's header, sequence number SEQ,
// PAYLOAD_LEN random payload bytes; an RFC 792 quote (8 bytes of TCP) on
// IPv4, the whole packet on IPv6.
Buf shifted_quote(const Sniffed& s, std::uint32_t seq, std::size_t payload_len) {
  Buf tcp = s.tcp_header;
  put32(tcp, 4, seq);
  put16(tcp, 16, rnd(0, 0xffff));  // checksum: whatever
  Buf payload(payload_len);
  for (auto& x : payload) x = rnd8(0, 255);
  const std::size_t plen = tcp.size() + payload_len;
  if (a.fam == 4) {
    Buf h = ip4_header(plen);  // random IP ID
    put16(h, 6, s.df ? 0x4000 : 0);
    h[8] = 1;                  // what a router that drops it on expiry quotes
    put16(h, 10, 0);
    put16(h, 10, fold(sum16(h.data(), 20)));
    tcp.resize(8);
    return cat(h, tcp);
  }
  Buf h = ip6_header(plen);
  put32(h, 0, (6u << 28) | s.flow_label);
  h[7] = 1;
  return cat(cat(h, tcp), payload);
}

}  // namespace

// forge shifted ...: a flood quoting consistently shifted sequence numbers.
int forge_shifted(int argc, char** argv) {
  if (argc != 14 && argc != 16 && argc != 17) {
    std::fprintf(stderr,
                 "usage: %s shifted 4|6 FAKE_FROM TO QSRC QDST SPORT DPORT COUNT SECONDS SEED SHIFT SWEEP "
                 "[LEN_MIN LEN_MAX [current|first]]\n", argv[0]);
    return 2;
  }
  a.fam = std::atoi(argv[2]);
  if ((a.fam != 4 && a.fam != 6) || !parse(a.fam, argv[3], a.from4, a.from6) ||
      !parse(a.fam, argv[4], a.to4, a.to6) || !parse(a.fam, argv[5], a.qsrc4, a.qsrc6) ||
      !parse(a.fam, argv[6], a.qdst4, a.qdst6)) {
    std::fprintf(stderr, "forge: bad family or address\n");
    return 2;
  }
  a.sport = static_cast<std::uint16_t>(std::atoi(argv[7]));
  a.dport = static_cast<std::uint16_t>(std::atoi(argv[8]));
  const long count = std::atol(argv[9]);
  const double seconds = std::atof(argv[10]);
  rng.seed(std::strtoull(argv[11], nullptr, 0));
  const auto shift = static_cast<std::uint32_t>(std::strtoul(argv[12], nullptr, 0));
  const long sweep = std::atol(argv[13]);
  long len_min = 1, len_max = 16;
  if (argc >= 16) { len_min = std::atol(argv[14]); len_max = std::atol(argv[15]); }
  const bool from_first = argc == 17 && std::strcmp(argv[16], "first") == 0;
  if (count < 1 || sweep < 0 || len_min < 1 || len_max < len_min || len_max > 1000) {
    std::fprintf(stderr, "forge: bad count, sweep or lengths\n");
    return 2;
  }

  const RawSender out;
  if (out.fd < 0) { std::perror("forge: socket"); return 1; }
  const int snoop = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
  if (snoop < 0) { std::perror("forge: packet socket"); return 1; }
  Sniffed s;
  timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int waited = 0; !s.seen && waited < 100; ++waited) sniff(snoop, s, 100);
  if (!s.seen) {
    std::fprintf(stderr, "forge: no data segment of the flow seen within 10 s\n");
    return 3;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const double start = wall();
  const long span = 2 * sweep + 1, lengths = len_max - len_min + 1;
  long sent = 0, errors = 0;
  for (long i = 0; i < count; ++i) {
    const double at = seconds * static_cast<double>(i) / static_cast<double>(count);
    const auto whole = static_cast<time_t>(at);
    timespec due = t0;
    due.tv_sec += whole;
    due.tv_nsec += static_cast<long>((at - static_cast<double>(whole)) * 1e9);
    if (due.tv_nsec >= 1000000000L) { due.tv_sec++; due.tv_nsec -= 1000000000L; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr);
    sniff(snoop, s, 0);  // what the connection sent meanwhile

    const std::uint32_t base = from_first ? s.first_seq : s.end;
    const auto k = static_cast<std::uint32_t>(i % span - sweep);  // -SWEEP..SWEEP, mod 2^32
    const auto payload_len = static_cast<std::size_t>(len_min + i % lengths);
    const Buf pkt = finish(icmp(te(), 0, shifted_quote(s, base + shift + k, payload_len)));
    if (!out.send(pkt)) {
      if (++errors <= 3) std::fprintf(stderr, "forge: sendto (%zu bytes): %s\n", pkt.size(), std::strerror(errno));
      continue;
    }
    ++sent;
  }
  const double end = wall();
  std::printf("sent shifted %ld errors %ld start %.6f end %.6f\n", sent, errors, start, end);
  std::printf("  flow seen: first data seq %u, last sequence number %u, %ld data segments, tcp header %zu bytes; "
              "quoted: %s + %u (shift) + k, k in -%ld..%ld, payload %ld..%ld bytes\n",
              s.first_seq, s.end, s.segments, s.tcp_header.size(), from_first ? "first seq" : "last sequence number",
              shift, sweep, sweep, len_min, len_max);
  close(snoop);
  return errors == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "tcp") == 0) return forge_tcp(argc, argv);
  if (argc > 1 && std::strcmp(argv[1], "shifted") == 0) return forge_shifted(argc, argv);
  if (argc != 12) {
    std::fprintf(stderr, "usage: %s 4|6 FAKE_FROM TO QSRC QDST SPORT DPORT VALID MALFORMED SECONDS SEED\n", argv[0]);
    return 2;
  }
  a.fam = std::atoi(argv[1]);
  if ((a.fam != 4 && a.fam != 6) || !parse(a.fam, argv[2], a.from4, a.from6) ||
      !parse(a.fam, argv[3], a.to4, a.to6) || !parse(a.fam, argv[4], a.qsrc4, a.qsrc6) ||
      !parse(a.fam, argv[5], a.qdst4, a.qdst6)) {
    std::fprintf(stderr, "forge: bad family or address\n");
    return 2;
  }
  a.sport = static_cast<std::uint16_t>(std::atoi(argv[6]));
  a.dport = static_cast<std::uint16_t>(std::atoi(argv[7]));
  const long valid = std::atol(argv[8]), malformed = std::atol(argv[9]);
  const double seconds = std::atof(argv[10]);
  rng.seed(std::strtoull(argv[11], nullptr, 10));

  const RawSender out;
  if (out.fd < 0) { std::perror("forge: socket"); return 1; }

  // Malformed messages spread evenly among the valid ones.
  const long total = valid + malformed;
  std::map<std::string, long> kinds;
  long sent_valid = 0, sent_malformed = 0, errors = 0, m_index = 0;
  timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const double start = wall();
  for (long i = 0; i < total; ++i) {
    // Pace: message i leaves at t0 + i * seconds / total.
    const double at = seconds * static_cast<double>(i) / static_cast<double>(std::max<long>(total, 1));
    const auto whole = static_cast<time_t>(at);
    timespec due = t0;
    due.tv_sec += whole;
    due.tv_nsec += static_cast<long>((at - static_cast<double>(whole)) * 1e9);
    if (due.tv_nsec >= 1000000000L) { due.tv_sec++; due.tv_nsec -= 1000000000L; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr);

    const bool bad = malformed > 0 && (i * malformed) / total != ((i + 1) * malformed) / total;
    std::string kind;
    Buf pkt = finish(bad ? malformed_message(m_index++, kind) : valid_message(kind));
    if (!out.send(pkt)) {
      if (++errors <= 3) std::fprintf(stderr, "forge: sendto (%s, %zu bytes): %s\n", kind.c_str(), pkt.size(), std::strerror(errno));
      continue;
    }
    (bad ? sent_malformed : sent_valid)++;
    kinds[(bad ? "malformed: " : "forged: ") + kind]++;
  }
  const double end = wall();
  std::printf("sent valid %ld malformed %ld errors %ld start %.6f end %.6f\n", sent_valid, sent_malformed, errors, start, end);
  for (const auto& [k, n] : kinds) std::printf("  %6ld  %s\n", n, k.c_str());
  return errors == 0 ? 0 : 1;
}
