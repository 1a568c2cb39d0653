#!/usr/bin/env bash
# Forged and malformed ICMP during a trace. While nfqtrace traces a live
# upload (client — r1 — r2 — r3 (silent) — server, --timeout 4 so the probes
# to the gap at ttl 3 stay unanswered for seconds), an attacker in r2 floods
# the client with thousands of ICMP time-exceeded and destination-unreachable
# messages from a router that does not exist (203.0.113.66 /
# 2001:db8:ffff::66). They quote the traced flow exactly as an observer of
# its addresses and ports could (client port taken from `ss -tn`), with
# random sequence numbers, IP IDs / flow labels, IP lengths and quote sizes,
# some with an RFC 4884 extension; interleaved with malformed ones (no quote,
# cut IP headers, IHL 15 or 3, quoted length below the header or 65535,
# wrong IP version, UDP, later fragments, 9 extension headers, RFC 4884
# lengths too short / past the end, short or wrong-version extensions,
# garbage). The sender is a small C++ program built here with g++ (raw
# socket, header included).
# Checks, IPv4 then IPv6: nfqtrace exits 0 by itself; its trace equals
# traceroute -T (the gap included: no hop invented there or anywhere), is
# reached with 3 probes per ttl; the fake address appears nowhere in its
# output; no reply of kind unreachable; replies matched (summary line) = the
# trace's ICMP replies; the summary's "ICMP unmatched" counts at least 90% of
# the forged messages that reached the client while it ran (iptables counter
# in the client's INPUT) and no more than all ICMP that reached it; the
# upload's sha256 matches; no rule is left. Harness sanity: >= 90% of the
# messages reached the client; the client's own TCP attributed >= 90% of the
# well-formed ones to the traced connection (TcpExt OutOfWindowIcmps: the
# quotes name the flow right, only the sequence numbers are wrong); the
# flood overlapped the trace and ended while nfqtrace still ran.
# (mock_nfqtrace.sh fails here: it counts no ICMP.)
#
# Then the same scenario with forged TCP instead: 10 RST and FIN+ACK
# segments "from the server" with random sequence numbers, which the
# client's TCP drops as out of window; the trace must not notice them either
# (reached, 3 probes per ttl, equal to traceroute -T), IPv4 and IPv6; and,
# with --repeat 3, one such RST between two rounds must not stop the rounds.
# SKIP_FORGED_TCP=1 leaves the TCP phases out.
# Usage: bash test_forged_icmp.sh /path/to/nfqtrace
source "$(dirname "$0")/lib.sh"
net_init forged_icmp g++
NFQ=${1:-}
require "nfqtrace binary given" nfqtrace_binary_ok "$NFQ"

FAKE4=203.0.113.66 FAKE6=2001:db8:ffff::66
VALID=4000 MALFORMED=640 FLOOD_S=3   # per family: ~1500 messages a second

section "network: client — r1 — r2 (attacker) — r3 (silent) — server"
net_build 3
net_silence "$(net_router 3)"
net_icmp_ratelimit_off
net_describe 4
CLI=$(net_client) SRV=$(net_server) ATTACKER=$(net_router 2)

section "building the forger"
cat >"$NET_TMP/forge.cpp" <<'EOF_CPP'
// forge: floods a host with forged ICMP/ICMPv6 errors that quote a TCP flow
// (addresses and ports known, sequence numbers not), interleaved with
// malformed ones; or sends it forged TCP RST and FIN segments of that flow.
// Raw socket with the IP header included (spoofed source).
//   forge 4|6 FAKE_FROM TO QUOTED_SRC QUOTED_DST SPORT DPORT VALID MALFORMED SECONDS SEED
//     Prints one summary line: "sent valid V malformed M errors E start T0 end
//     T1" (T0/T1: wall clock, seconds since the epoch) and the count of each kind.
//   forge tcp 4|6 FROM TO SPORT DPORT COUNT SECONDS SEED
//     COUNT segments FROM:SPORT -> TO:DPORT, RST and FIN+ACK in turn, random
//     sequence and acknowledgment numbers, spread over SECONDS.
#include <arpa/inet.h>
#include <netinet/in.h>
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
void put16(Buf& b, std::size_t at, std::uint32_t v) { b[at] = v >> 8; b[at + 1] = v & 0xff; }
void put32(Buf& b, std::size_t at, std::uint32_t v) { put16(b, at, v >> 16); put16(b, at + 2, v & 0xffff); }

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t s = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
  if (n & 1) s += p[n - 1] << 8;
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
  for (std::size_t i = 20; i < full.size(); ++i) full[i] = rnd(0, 255);
  std::copy(full.begin(), full.begin() + bytes, t.begin());
  return t;
}

Buf ip4_header(std::size_t payload_len_field, std::uint8_t proto = 6) {
  Buf h(20, 0);
  h[0] = 0x45;
  put16(h, 2, 20 + payload_len_field);
  put16(h, 4, rnd(0, 0xffff));            // IP ID: random
  put16(h, 6, rnd(0, 1) ? 0x4000 : 0);    // DF or not
  h[8] = rnd(0, 2);                        // TTL left at the router
  h[9] = proto;
  std::memcpy(&h[12], &a.qsrc4, 4);
  std::memcpy(&h[16], &a.qdst4, 4);
  put16(h, 10, fold(sum16(h.data(), 20)));
  return h;
}

Buf ip6_header(std::size_t payload_len_field, std::uint8_t next = 6) {
  Buf h(40, 0);
  put32(h, 0, (6u << 28) | rnd(0, 0xfffff));  // random flow label
  put16(h, 4, payload_len_field);
  h[6] = next;
  h[7] = rnd(0, 2);
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
  if (ext_len >= 1) ext[0] = version << 4;
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

Buf malformed_message(unsigned i, std::string& kind) {
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
      { Buf q(rnd(1, 200)); for (auto& x : q) x = rnd(0, 255); return icmp(rnd(0, 1) ? te() : unreach(), rnd(0, 1), q); }
  }
}

// Outer header + checksums.
Buf finish(Buf m) {
  if (a.fam == 4) {
    put16(m, 2, 0);
    put16(m, 2, fold(sum16(m.data(), m.size())));
    Buf h(20, 0);
    h[0] = 0x45;
    put16(h, 2, 20 + m.size());
    put16(h, 4, rnd(1, 0xffff));
    h[8] = rnd(50, 64);
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
  put32(pseudo, 32, m.size());
  pseudo[39] = 58;
  put16(m, 2, fold(sum16(m.data(), m.size(), sum16(pseudo.data(), 40))));
  Buf h(40, 0);
  put32(h, 0, 6u << 28);
  put16(h, 4, m.size());
  h[6] = 58;
  h[7] = rnd(50, 64);
  std::memcpy(&h[8], &a.from6, 16);
  std::memcpy(&h[24], &a.to6, 16);
  return cat(h, m);
}

double wall() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
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
  const std::uint16_t sport = std::atoi(argv[5]), dport = std::atoi(argv[6]);
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
    if (i + 1 < count) usleep(static_cast<useconds_t>(seconds * 1e6 / count));
  }
  std::printf("sent tcp %ld errors %ld\n", sent, errors);
  return errors == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "tcp") == 0) return forge_tcp(argc, argv);
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
  a.sport = std::atoi(argv[6]);
  a.dport = std::atoi(argv[7]);
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
    const double at = seconds * i / std::max<long>(total, 1);
    timespec due = t0;
    due.tv_sec += static_cast<time_t>(at);
    due.tv_nsec += static_cast<long>((at - static_cast<long>(at)) * 1e9);
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
EOF_CPP
FORGE="$NET_TMP/forge"
require "the forger builds" g++ -O2 -std=c++20 "$NET_TMP/forge.cpp" -o "$FORGE"

# counter_rules NS FAM FAKE: two counting rules (no target) in the client's
# INPUT chain: ICMP from the fake router, other ICMP.
counter_rules() {
  local ns=$1 fam=$2 fake=$3
  if [[ $fam == 4 ]]; then
    ns_exec "$ns" iptables -A INPUT -p icmp -s "$fake" -m comment --comment forged-in
    ns_exec "$ns" iptables -A INPUT -p icmp ! -s "$fake" -m comment --comment genuine-in
  else
    ns_exec "$ns" ip6tables -A INPUT -p icmpv6 -s "$fake" -m comment --comment forged-in
    ns_exec "$ns" ip6tables -A INPUT -p icmpv6 ! -s "$fake" -m comment --comment genuine-in
  fi
}
# counter NS FAM COMMENT: packets counted by that rule.
counter() {
  local tool=iptables; [[ $2 == 6 ]] && tool=ip6tables
  ns_exec "$1" "$tool" -nvxL INPUT | awk -v c="$3" 'index($0, "/* " c " */") { print $1; exit }'
}
# flow_sport NS DST PORT: the local port of the established connection to
# DST:PORT (what an observer of the flow learns).
flow_sport() {
  ns_exec "$1" ss -Htn state established "( dport = :$3 )" | awk '{ print $3 }' | sed 's/.*://' | head -n1
}
has_flow() { [[ -n $(flow_sport "$@") ]]; }
# tcpext NS FIELD: a TcpExt counter of the namespace (/proc/net/netstat).
tcpext() {
  ns_exec "$1" cat /proc/net/netstat | awk -v f="$2" '$1 == "TcpExt:" && !h { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1; next }
    $1 == "TcpExt:" && h { print $c + 0; exit }'
}
has_trace_record() { grep -q '"type":"trace"' "$1"; }
# start_held_upload NAME FAM PORT DATA INTERVAL_S NFQTRACE_ARGS...: nfqtrace
# NAME on the client with NFQTRACE_ARGS, then an upload of DATA to PORT whose
# connection opens at once but whose bytes (8 KiB every INTERVAL_S) wait for
# `release_upload NAME`: the test decides what is under way when the trace
# starts. Sets FLOW_SPORT, the connection's client port.
start_held_upload() {
  local name=$1 fam=$2 port=$3 data=$4 interval=$5 dst; shift 5
  dst=$(net_server_addr "$fam")
  require "nfqtrace starts and installs its rules" nfqtrace_start "$name" "$CLI" "$NFQ" "$@"
  bg_start "up-$name" ip netns exec "$CLI" bash -c \
    "{ while [ ! -e '$NET_TMP/go-$name' ]; do sleep 0.05; done; bash '$NET_TMP/slowcat.sh' '$data' 8192 $interval; } | socat -u - '$(connect_addr "$fam" "$dst" "$port")'"
  require "the upload's connection is established (ss -tn)" wait_until 5 has_flow "$CLI" "$dst" "$port"
  FLOW_SPORT=$(flow_sport "$CLI" "$dst" "$port")
}
release_upload() { touch "$NET_TMP/go-$1"; }
epoch_of() { date -u -d "$1" +%s.%N; }
summary_count() { { grep -oE "[0-9]+ $2" "$1" || true; } | tail -n1 | cut -d' ' -f1; }
no_fake_addr() {
  local n; n=$(grep -c -F "$2" "$1" || true)
  (( n == 0 )) && return 0
  echo "  $n output lines name $2:"; grep -F "$2" "$1" | head -5 | cut -c1-200 | sed 's/^/    /'; return 1
}

# phase ATTACK(icmp|tcp) FAM PORT: one traced upload under attack.
phase() {
  local attack=$1 fam=$2 port=$3 name="nfq-$1$2"
  local fake=$FAKE4; [[ $fam == 6 ]] && fake=$FAKE6
  local src dst data="$NET_TMP/data-$name.bin" sport oow_before oow label
  src=$(net_client_addr "$fam") dst=$(net_server_addr "$fam")
  label="IPv$fam $attack"
  if [[ $attack == icmp ]]; then
    section "$label: nfqtrace on the client (--dport $port), 256 KiB upload, forged ICMP from $fake"
  else
    section "$label: nfqtrace on the client (--dport $port), 256 KiB upload, forged RST/FIN from the server's address"
  fi
  make_data "$data" 256
  upload_server "$SRV" "$fam" "$port"
  [[ $attack == icmp ]] && counter_rules "$CLI" "$fam" "$fake"
  # The trace starts while the attack is already arriving. 8 KiB every
  # 0.25 s: 8 s.
  start_held_upload "$name" "$fam" "$port" "$data" 0.25 \
    --dport "$port" --mode dup --count 1 --format json --timeout 4
  sport=$FLOW_SPORT
  oow_before=$(tcpext "$CLI" OutOfWindowIcmps)
  if [[ $attack == icmp ]]; then
    log "flow $src:$sport -> $dst:$port; flooding from r2: $VALID forged + $MALFORMED malformed in $FLOOD_S s"
    bg_start "forge-$name" ip netns exec "$ATTACKER" "$FORGE" "$fam" "$fake" "$src" "$src" "$dst" "$sport" "$port" \
      $VALID $MALFORMED $FLOOD_S $((RANDOM * 32768 + RANDOM))
  else
    log "flow $src:$sport -> $dst:$port; from r2: 10 RST and FIN+ACK as $dst:$port, random sequence numbers, in 2 s"
    bg_start "forge-$name" ip netns exec "$ATTACKER" "$FORGE" tcp "$fam" "$dst" "$src" "$port" "$sport" 10 2 \
      $((RANDOM * 32768 + RANDOM))
  fi
  sleep 0.5
  release_upload "$name"
  check "the forger sent everything (exit 0)" bg_wait "forge-$name" 30
  check "nfqtrace still running when the attack ended (harness: it saw all of it)" bg_running "$name"
  show_file "forger" "${BG_OUT[forge-$name]}" 40
  show_file "forger stderr" "${BG_ERR[forge-$name]}" 5
  if [[ $attack == icmp ]]; then
    oow=$(( $(tcpext "$CLI" OutOfWindowIcmps) - oow_before ))
    check "$label: the client's TCP matched $oow forged errors to the traced connection and ignored them as out of window (TcpExt OutOfWindowIcmps >= 90% of the $VALID well-formed ones: the quotes name the flow right)" \
      test "$oow" -ge $((VALID * 9 / 10))
  fi
  check_nfqtrace_exit "$name" 30
  # ICMP that reached the client while nfqtrace ran (traceroute -T comes later).
  local forged_in=0 genuine_in=0
  if [[ $attack == icmp ]]; then
    forged_in=$(counter "$CLI" "$fam" forged-in) genuine_in=$(counter "$CLI" "$fam" genuine-in)
  fi
  check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
  check "upload client exits 0 (the connection was not hurt)" bg_wait "up-$name" 30
  check "upload arrived complete" upload_wait "$port" 1 $((256 * 1024)) 10
  check "upload sha256 matches end to end" test "$(upload_received_shas "$port")" = "$(sha_of "$data")"

  section "$label: reference and comparison"
  reference_trace client "$fam" "$port" "$NET_TMP/tr-$name"
  check_one_trace "$name" "$label trace" "$NET_TMP/tr-$name" dup "$src" "$dst" "$port" "$sport"
  local out=${BG_OUT[$name]} err=${BG_ERR[$name]} rec
  show_file "nfqtrace stderr" "$err" 10
  rec=$(trace_records "$out" | head -n1)
  check "$label: 3 probes sent to every ttl up to the server (got $(jq -c '[.hops[].probes]' <<<"${rec:-{\}}" 2>/dev/null))" \
    json_true "$rec" '[.hops[].probes] | length > 0 and all(. == 3)'
  bg_stop "upload-server-$port"
  [[ $attack == icmp ]] || return 0

  check "$label: $fake appears nowhere in nfqtrace's output" no_fake_addr "$out" "$fake"
  check "$label: no reply of kind unreachable (only forged ones were sent)" \
    json_true "$rec" '[.hops[].replies[] | select(.kind == "unreachable")] | length == 0'
  # The flood overlapped the trace (harness sanity).
  local sent_valid sent_bad f_start f_end t_start t_end during
  read -r _ _ sent_valid _ sent_bad _ _ _ f_start _ f_end < <(head -n1 "${BG_OUT[forge-$name]}")
  t_start=$(epoch_of "$(jq -r .start <<<"$rec")") t_end=$(epoch_of "$(jq -r .end <<<"$rec")")
  during=$(awk -v fs="$f_start" -v fe="$f_end" -v ts="$t_start" -v te="$t_end" -v n=$((sent_valid + sent_bad)) \
    'BEGIN { a = (fs > ts ? fs : ts); b = (fe < te ? fe : te); d = fe - fs; printf "%d", (b > a && d > 0) ? n * (b - a) / d : 0 }')
  log "flood $f_start..$f_end, trace $t_start..$t_end: about $during messages sent while the trace ran"
  check "$label: at least 1000 forged messages sent while the trace ran (harness; ~$during)" test "$during" -ge 1000

  local unmatched matched icmp_replies
  unmatched=$(summary_count "$err" "ICMP unmatched") matched=$(summary_count "$err" "replies matched")
  icmp_replies=$(jq '[.hops[].replies[] | select(.kind != "destination")] | length' <<<"$rec")
  log "sent $((sent_valid + sent_bad)), reached the client $forged_in (+ $genuine_in genuine ICMP); nfqtrace: $matched matched, $unmatched unmatched"
  check "$label: the forged messages reached the client (counter $forged_in >= 90% of $((sent_valid + sent_bad)) sent)" \
    test "$forged_in" -ge $(((sent_valid + sent_bad) * 9 / 10))
  check "$label: summary line has the ICMP counts" test -n "$unmatched" -a -n "$matched"
  check "$label: replies matched (${matched:-?}) = the trace's ICMP replies ($icmp_replies)" test "${matched:-x}" = "$icmp_replies"
  check "$label: ICMP unmatched (${unmatched:-?}) >= 90% of forged arrivals ($forged_in)" \
    test "${unmatched:-0}" -ge $((forged_in * 9 / 10))
  check "$label: ICMP unmatched (${unmatched:-?}) <= all ICMP arrivals ($((forged_in + genuine_in)))" \
    test "${unmatched:-0}" -le $((forged_in + genuine_in))
  # Each refused message is counted with its reason; the reasons add up.
  local refused reasons_sum
  refused=$(grep -m1 '^nfqtrace: refused:' "$err" || true)
  echo "  ${refused:-(no refused line)}"
  reasons_sum=$(grep -m1 '^nfqtrace: refused:' "$err" | tr ';' '\n' |
    grep -E 'ICMP naming no probe|unreadable ICMP' | grep -oE '[a-z_]+ [0-9]+' | awk '{ n += $2 } END { print n + 0 }')
  check "$label: the refused line gives reasons (no_such_probe among them)" grep -q 'no_such_probe [0-9]' <<<"$refused"
  check "$label: the ICMP reasons add up to ICMP unmatched ($reasons_sum = ${unmatched:-?})" \
    test "$reasons_sum" = "${unmatched:-x}"
}

# repeat_phase FAM PORT: --repeat 3 during an 8 s upload; one forged RST
# (random sequence number) 0.3 s after the first round ended, while the
# flow's packets skip the queue until its next round; rounds must go on,
# numbered 1, 2, 3 (not restarted).
repeat_phase() {
  local fam=$1 port=$2 name="nfq-repeat$1" src dst sport data t_rst n_after rounds
  src=$(net_client_addr "$fam") dst=$(net_server_addr "$fam")
  data="$NET_TMP/data-$name.bin"
  section "IPv$fam: --repeat 3 during an 8 s upload, one forged RST between rounds 1 and 2"
  make_data "$data" 640
  upload_server "$SRV" "$fam" "$port"
  start_held_upload "$name" "$fam" "$port" "$data" 0.1 \
    --dport "$port" --mode dup --repeat 3 --format json --timeout 1
  sport=$FLOW_SPORT
  release_upload "$name"
  check "a first round ends within 10 s" wait_until 10 has_trace_record "${BG_OUT[$name]}"
  sleep 0.3
  t_rst=$(date +%s.%N)
  log "flow $src:$sport -> $dst:$port; $(trace_records "${BG_OUT[$name]}" | wc -l) round(s) so far; one forged RST from r2"
  check "the forger sent the RST" ns_exec "$ATTACKER" "$FORGE" tcp "$fam" "$dst" "$src" "$port" "$sport" 1 0 $RANDOM
  check "upload client exits 0 (the connection was not hurt)" bg_wait "up-$name" 30
  bg_signal "$name" INT
  check_nfqtrace_exit "$name" 10
  check "no nfqtrace rule left in the client" no_nfqtrace_rules "$CLI"
  show_nfq_output "${BG_OUT[$name]}"
  n_after=0
  while read -r start; do
    [[ $(awk -v a="$(epoch_of "$start")" -v b="$t_rst" 'BEGIN { print (a > b) }') == 1 ]] && n_after=$((n_after + 1))
  done < <(trace_records "${BG_OUT[$name]}" | jq -r .start)
  check "IPv$fam repeat: rounds went on after the forged RST ($n_after started after it; 2 expected)" test "$n_after" -ge 1
  rounds=$(trace_records "${BG_OUT[$name]}" | jq -r .round | tr '\n' ' ')
  check "IPv$fam repeat: rounds numbered 1, 2, 3... (got: $rounds)" \
    test "$rounds" = "$(seq -s ' ' 1 "$(wc -w <<<"$rounds")") "
  bg_stop "upload-server-$port"
}

phase icmp 4 5104
phase icmp 6 5106
if [[ ${SKIP_FORGED_TCP:-0} != 1 ]]; then
  phase tcp 4 5204
  phase tcp 6 5206
  repeat_phase 4 5304
fi
net_finish
