// streamcheck — are all the TCP segments of a transfer, as captured at the
// receiver, byte-identical to the data that was sent?
//
// A parasitic tracer's duplicate probes that reach the receiver must carry
// exactly the bytes of the stream at their sequence numbers: if a probe with
// other bytes arrived before the original segment, the receiver would keep
// them. The sha256 of the received file catches that only when the race is
// lost; this checks every segment, whichever arrived first.
//
// Usage: streamcheck CAPTURE.pcap DATA_FILE src:PORT|dst:PORT
//   CAPTURE.pcap: tcpdump -w with full snap length, Ethernet or Linux cooked
//   link type, holding one connection's segments in the direction of the
//   data, those from (src:) or to (dst:) PORT, starting with the sender's
//   SYN or SYN-ACK (so the initial sequence number is known).
// Prints a summary; exits 0 when every payload byte matched, 1 otherwise,
// 2 on a usage or capture error.
//
// Built by CMake (tools/testnet/CMakeLists.txt) into <build>/helpers.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;

bool read_file(const char* path, Bytes& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

std::uint32_t be16(const std::uint8_t* p) { return std::uint32_t{p[0]} << 8 | p[1]; }
std::uint32_t be32(const std::uint8_t* p) { return be16(p) << 16 | be16(p + 2); }

struct Segment {
  unsigned other_port;  // the port that was not matched
  std::uint32_t seq;
  bool syn;
  int ttl;
  const std::uint8_t* payload;
  std::size_t len;
};

// Finds the TCP segment in one captured frame; false when it is not TCP.
bool parse_frame(std::uint32_t linktype, const std::uint8_t* p, std::size_t n, bool by_src, unsigned port, Segment& seg) {
  std::size_t off;
  std::uint32_t ethertype;
  if (linktype == 1) {  // Ethernet
    if (n < 14) return false;
    ethertype = be16(p + 12), off = 14;
    if (ethertype == 0x8100 && n >= 18) ethertype = be16(p + 16), off = 18;
  } else if (linktype == 113) {  // Linux cooked (tcpdump -i any)
    if (n < 16) return false;
    ethertype = be16(p + 14), off = 16;
  } else {
    return false;
  }
  std::size_t l4;
  std::size_t end;
  if (ethertype == 0x0800) {
    if (n < off + 20 || p[off + 9] != 6) return false;
    seg.ttl = p[off + 8];
    l4 = off + std::size_t{p[off] & 0x0fu} * 4;
    end = off + be16(p + off + 2);
  } else if (ethertype == 0x86dd) {
    if (n < off + 40 || p[off + 6] != 6) return false;  // no extension headers in our networks
    seg.ttl = p[off + 7];
    l4 = off + 40;
    end = l4 + be16(p + off + 4);
  } else {
    return false;
  }
  if (end > n || l4 + 20 > end) return false;
  if (be16(p + l4 + (by_src ? 0 : 2)) != port) return false;
  seg.other_port = be16(p + l4 + (by_src ? 2 : 0));
  std::size_t doff = static_cast<std::size_t>(p[l4 + 12] >> 4) * 4;
  if (l4 + doff > end) return false;
  seg.seq = be32(p + l4 + 4);
  seg.syn = (p[l4 + 13] & 0x02) != 0;
  seg.payload = p + l4 + doff;
  seg.len = end - l4 - doff;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: streamcheck CAPTURE.pcap DATA_FILE src:PORT|dst:PORT\n");
    return 2;
  }
  std::string which = argv[3];
  if (which.size() < 5 || (which.rfind("src:", 0) != 0 && which.rfind("dst:", 0) != 0)) {
    std::fprintf(stderr, "streamcheck: third argument must be src:PORT or dst:PORT\n");
    return 2;
  }
  bool by_src = which[0] == 's';
  unsigned port = static_cast<unsigned>(std::stoul(which.substr(4)));
  Bytes cap, data;
  if (!read_file(argv[1], cap) || !read_file(argv[2], data)) {
    std::fprintf(stderr, "streamcheck: cannot read %s or %s\n", argv[1], argv[2]);
    return 2;
  }
  if (cap.size() < 24) {
    std::fprintf(stderr, "streamcheck: capture too short\n");
    return 2;
  }
  std::uint32_t magic = std::uint32_t{cap[0]} | std::uint32_t{cap[1]} << 8 | std::uint32_t{cap[2]} << 16 | std::uint32_t{cap[3]} << 24;
  bool swap;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) swap = false;
  else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) swap = true;
  else {
    std::fprintf(stderr, "streamcheck: not a pcap file (pcapng is not supported)\n");
    return 2;
  }
  auto u32 = [&](std::size_t at) {
    std::uint32_t le = std::uint32_t{cap[at]} | std::uint32_t{cap[at + 1]} << 8 | std::uint32_t{cap[at + 2]} << 16 | std::uint32_t{cap[at + 3]} << 24;
    return swap ? be32(&cap[at]) : le;
  };
  std::uint32_t linktype = u32(20);

  bool have_isn = false;
  std::uint32_t isn = 0;
  unsigned peer_port = 0;               // the other end's port, from the SYN
  std::vector<bool> covered(data.size());  // stream bytes seen at least once
  std::uint64_t segments = 0, bytes = 0, bad_segments = 0, beyond = 0, before_stream = 0;
  std::map<std::uint32_t, int> seen;  // seq -> times seen, to count duplicates
  std::size_t at = 24;
  while (at + 16 <= cap.size()) {
    std::uint32_t incl = u32(at + 8);
    at += 16;
    if (at + incl > cap.size()) break;
    Segment seg{};
    if (parse_frame(linktype, &cap[at], incl, by_src, port, seg)) {
      if (seg.syn) {
        // The first SYN names the connection; later ones (a traceroute's,
        // say) belong to others.
        if (!have_isn) have_isn = true, isn = seg.seq, peer_port = seg.other_port;
      } else if (have_isn && seg.other_port == peer_port && seg.len > 0) {
        std::uint32_t offset = seg.seq - isn - 1;  // modulo 2^32, as TCP counts
        // Wholly at or before the SYN's sequence number: space that never
        // held stream data, so no receiver can keep those bytes (a tracer's
        // probes for a flow that sent no data live there). Counted apart.
        if (static_cast<std::int32_t>(offset + static_cast<std::uint32_t>(seg.len)) <= 0) {
          ++before_stream;
          at += incl;
          continue;
        }
        ++segments;
        ++seen[seg.seq];
        std::size_t mismatch = seg.len, i = 0;
        for (; i < seg.len; ++i) {
          std::size_t k = std::size_t{offset} + i;
          if (k >= data.size()) { ++beyond; mismatch = i; break; }
          if (seg.payload[i] != data[k]) { mismatch = i; break; }
          covered[k] = true;
        }
        bytes += seg.len;
        if (mismatch != seg.len) {
          if (++bad_segments <= 10)
            std::printf("  BAD segment: stream offset %u, %zu bytes, ttl/hlim %d: byte %zu differs\n", offset, seg.len,
                        seg.ttl, mismatch);
        }
      }
    }
    at += incl;
  }
  if (!have_isn) {
    std::fprintf(stderr, "streamcheck: no SYN of the sender (%s) in the capture\n", argv[3]);
    return 2;
  }
  std::uint64_t dups = 0;
  for (auto& [seq, times] : seen) dups += static_cast<std::uint64_t>(times - 1);
  std::size_t seen_bytes = 0;
  for (bool c : covered) seen_bytes += c ? 1 : 0;
  std::printf("streamcheck: %llu data segments (%llu bytes), %llu with a repeated sequence number, "
              "%llu not matching the data, %zu of %zu stream bytes seen\n",
              static_cast<unsigned long long>(segments), static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(dups), static_cast<unsigned long long>(bad_segments), seen_bytes,
              data.size());
  if (beyond > 0) std::printf("  %llu segments go past the end of the data\n", static_cast<unsigned long long>(beyond));
  if (before_stream > 0)
    std::printf("  %llu segments wholly before the stream's first byte (never data)\n",
                static_cast<unsigned long long>(before_stream));
  // Every byte must have been seen: a capture with holes proves nothing.
  return bad_segments == 0 && beyond == 0 && seen_bytes == data.size() ? 0 : 1;
}
