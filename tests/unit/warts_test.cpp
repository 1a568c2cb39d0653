// The warts writer against warts(5), byte by byte, and against scamper's own
// readers (sc_warts2json, sc_warts2text) when Debian's scamper is installed.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "format_samples.hpp"
#include "nfqtrace/output/format.hpp"  // nlohmann::json, to read sc_warts2json
#include "nfqtrace/output/warts.hpp"

using namespace nfqtrace;
using formats::ipv4_trace;
using formats::ipv6_trace;
using Bytes = std::vector<std::uint8_t>;

namespace {

output::WartsFileInfo file_info() {
  output::WartsFileInfo info;
  info.list_name = "nfqtrace";
  info.description = "test";
  info.monitor = "vm";
  info.start = std::chrono::seconds(1'795'773'600);
  return info;
}

// Reads what the writer wrote, as a reader of warts(5) would.
struct Reader {
  const Bytes& b;
  std::size_t at = 0;
  std::uint8_t u8() { return b.at(at++); }
  std::uint16_t u16() {
    const std::uint16_t hi = u8();
    return static_cast<std::uint16_t>(hi << 8 | u8());
  }
  std::uint32_t u32() {
    const std::uint32_t hi = u16();
    return hi << 16 | u16();
  }
  // The flag numbers set, and the parameters' length.
  std::pair<std::set<unsigned>, std::uint16_t> flags() {
    std::set<unsigned> set;
    for (unsigned byte = 0;; ++byte) {
      const std::uint8_t f = u8();
      for (unsigned bit = 0; bit < 7; ++bit)
        if (f & (1u << bit)) set.insert(byte * 7 + bit + 1);
      if (!(f & 0x80)) break;
    }
    return {set, set.empty() ? std::uint16_t{0} : u16()};
  }
  // An embedded address, resolved against the record's table.
  std::string address(std::vector<std::string>& table) {
    const std::uint8_t length = u8();
    if (length == 0) return table.at(u32());
    const std::uint8_t type = u8();
    EXPECT_EQ(type, length == 4 ? 1 : 2);
    std::array<std::uint8_t, 16> bytes{};
    for (std::uint8_t i = 0; i < length; ++i) bytes[i] = u8();
    wire::Address a = length == 4 ? wire::Address::v4(wire::Bytes(bytes.data(), 4))
                                  : wire::Address::v6(wire::Bytes(bytes.data(), 16));
    table.push_back(a.to_string());
    return table.back();
  }
};

struct HopRecord {
  unsigned probe_ttl = 0, reply_ttl = 0, hop_flags = 0, attempt = 0, icmp = 0, quoted_ttl = 0, tcp_flags = 0;
  std::uint32_t rtt_us = 0;
  std::string addr;
  Bytes icmpext;
  std::set<unsigned> present;
};

struct TraceRecord {
  std::set<unsigned> present;
  std::uint32_t list = 0, cycle = 0, start_sec = 0, start_usec = 0;
  unsigned stop = 0, type = 0, sport = 0, dport = 0, hops_probed = 0, probes = 0;
  std::string src, dst;
  std::vector<HopRecord> hops;
  std::vector<std::string> table;
};

TraceRecord read_trace(const Bytes& b) {
  Reader r{b};
  EXPECT_EQ(r.u16(), output::warts::magic);
  EXPECT_EQ(r.u16(), output::warts::type_trace);
  EXPECT_EQ(r.u32(), b.size() - 8);
  TraceRecord t;
  auto [flags, length] = r.flags();
  t.present = flags;
  const std::size_t params_end = r.at + length;
  for (unsigned f : flags) {
    switch (f) {
      case 1: t.list = r.u32(); break;
      case 2: t.cycle = r.u32(); break;
      case 5: t.start_sec = r.u32(); t.start_usec = r.u32(); break;
      case 6: t.stop = r.u8(); break;
      case 7: case 9: case 15: r.u8(); break;
      case 11: t.type = r.u8(); break;
      case 12: r.u16(); break;
      case 13: t.sport = r.u16(); break;
      case 14: t.dport = r.u16(); break;
      case 19: t.hops_probed = r.u16(); break;
      case 23: t.probes = r.u16(); break;
      case 26: t.src = r.address(t.table); break;
      case 27: t.dst = r.address(t.table); break;
      default: ADD_FAILURE() << "unexpected trace flag " << f;
    }
  }
  EXPECT_EQ(r.at, params_end);
  const std::uint16_t count = r.u16();
  for (std::uint16_t i = 0; i < count; ++i) {
    HopRecord h;
    auto [hop_flags, hop_length] = r.flags();
    h.present = hop_flags;
    const std::size_t end = r.at + hop_length;
    for (unsigned f : hop_flags) {
      switch (f) {
        case 2: h.probe_ttl = r.u8(); break;
        case 3: h.reply_ttl = r.u8(); break;
        case 4: h.hop_flags = r.u8(); break;
        case 5: h.attempt = r.u8(); break;
        case 6: h.rtt_us = r.u32(); break;
        case 7: h.icmp = r.u16(); break;
        case 8: r.u16(); break;
        case 14: h.quoted_ttl = r.u8(); break;
        case 15: h.tcp_flags = r.u8(); break;
        case 17: {
          const std::uint16_t total = r.u16();
          for (std::uint16_t k = 0; k < total; ++k) h.icmpext.push_back(r.u8());
          break;
        }
        case 18: h.addr = r.address(t.table); break;
        default: ADD_FAILURE() << "unexpected hop flag " << f;
      }
    }
    EXPECT_EQ(r.at, end);
    t.hops.push_back(h);
  }
  EXPECT_EQ(r.u16(), 0) << "end of record";
  EXPECT_EQ(r.at, b.size());
  return t;
}

void append(Bytes& to, const Bytes& more) { to.insert(to.end(), more.begin(), more.end()); }

}  // namespace

TEST(Warts, FileStartIsAListAndACycleStart) {
  const Bytes expected = {
      // list: magic, type 1, length 28
      0x12, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1c,
      0x00, 0x00, 0x00, 0x01,                                  // list id 1
      0x00, 0x00, 0x00, 0x00,                                  // human id 0
      'n', 'f', 'q', 't', 'r', 'a', 'c', 'e', 0,               // name
      0x03, 0x00, 0x08,                                        // flags 1 and 2, 8 bytes
      't', 'e', 's', 't', 0, 'v', 'm', 0,                      // description, monitor
      // cycle start: magic, type 2, length 22
      0x12, 0x05, 0x00, 0x02, 0x00, 0x00, 0x00, 0x16,
      0x00, 0x00, 0x00, 0x01,                                  // cycle id 1
      0x00, 0x00, 0x00, 0x01,                                  // list id 1
      0x00, 0x00, 0x00, 0x00,                                  // human id 0
      0x6b, 0x09, 0x54, 0xa0,                                  // 1795773600
      0x02, 0x00, 0x03, 'v', 'm', 0,                           // flag 2: hostname
  };
  EXPECT_EQ(output::WartsWriter(file_info()).file_start(), expected);
}

TEST(Warts, FileEndIsACycleStop) {
  const Bytes expected = {0x12, 0x05, 0x00, 0x04, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
                          0x01, 0x6b, 0x09, 0x54, 0xaa, 0x00};
  EXPECT_EQ(output::WartsWriter(file_info()).file_end(std::chrono::seconds(1'795'773'610)), expected);
}

TEST(Warts, FlagsLinkToAFurtherByteAndParametersFollowInOrder) {
  const Bytes b = output::WartsWriter(file_info()).trace(ipv4_trace());
  // Flags 1 2 5 6 7 | 9 11 13 14 | 15 19 | 23 26 27: four bytes, linked.
  EXPECT_EQ(b[8], 0x80 | 0x01 | 0x02 | 0x10 | 0x20 | 0x40);
  EXPECT_EQ(b[9], 0x80 | 0x02 | 0x08 | 0x20 | 0x40);
  EXPECT_EQ(b[10], 0x80 | 0x01 | 0x10);
  EXPECT_EQ(b[11], 0x02 | 0x10 | 0x20);
}

TEST(Warts, Ipv4TraceHasEveryReplyAsAHopRecord) {
  const TraceRecord t = read_trace(output::WartsWriter(file_info()).trace(ipv4_trace()));
  EXPECT_EQ(t.list, 1u);
  EXPECT_EQ(t.cycle, 1u);
  EXPECT_EQ(t.start_sec, 1'795'773'600u);
  EXPECT_EQ(t.start_usec, 123456u);
  EXPECT_EQ(t.stop, output::warts::stop_completed);
  EXPECT_EQ(t.type, output::warts::trace_type_tcp_ack);
  EXPECT_EQ(t.sport, 41234u);
  EXPECT_EQ(t.dport, 443u);
  EXPECT_EQ(t.hops_probed, 4u);
  EXPECT_EQ(t.probes, 12u);
  EXPECT_EQ(t.src, "10.0.0.2");
  EXPECT_EQ(t.dst, "192.0.2.7");
  ASSERT_EQ(t.hops.size(), 5u);  // TTL 2 is silent: no record

  EXPECT_EQ(t.hops[0].probe_ttl, 1u);
  EXPECT_EQ(t.hops[0].addr, "198.51.100.1");
  EXPECT_EQ(t.hops[0].rtt_us, 1234u);
  EXPECT_EQ(t.hops[0].reply_ttl, 255u);
  EXPECT_EQ(t.hops[0].hop_flags, output::warts::hop_flag_reply_ttl);
  EXPECT_EQ(t.hops[0].icmp, 0x0b00u);  // time exceeded, code 0
  EXPECT_EQ(t.hops[0].quoted_ttl, 1u);
  EXPECT_EQ(t.hops[0].attempt, 0u);  // from 0; scamper's readers show 1
  EXPECT_TRUE(t.hops[0].icmpext.empty());

  EXPECT_EQ(t.hops[1].attempt, 1u);
  EXPECT_EQ(t.hops[1].rtt_us, 1500u);  // truncated to the microsecond
  // Label 24001, TC 0, S 1, TTL 1 as one extension of class 1, type 1.
  const Bytes mpls = {0x00, 0x04, 0x01, 0x01, 0x05, 0xdc, 0x11, 0x01};
  EXPECT_EQ(t.hops[1].icmpext, mpls);

  EXPECT_EQ(t.hops[2].probe_ttl, 3u);
  EXPECT_EQ(t.hops[2].addr, "203.0.113.9");
  EXPECT_EQ(t.hops[2].reply_ttl, 253u);

  for (std::size_t i : {3u, 4u}) {
    EXPECT_EQ(t.hops[i].probe_ttl, 4u);
    EXPECT_EQ(t.hops[i].addr, "192.0.2.7");
    EXPECT_EQ(t.hops[i].hop_flags, output::warts::hop_flag_reply_ttl | output::warts::hop_flag_tcp);
    EXPECT_EQ(t.hops[i].tcp_flags, output::warts::tcp_ack);
    EXPECT_EQ(t.hops[i].present.count(7), 0u) << "no ICMP type for a TCP reply";
    EXPECT_EQ(t.hops[i].present.count(14), 0u);
  }
  EXPECT_EQ(t.hops[3].rtt_us, 20001u);
}

TEST(Warts, AnAddressIsDefinedOnceARecordThenReferenced) {
  const Bytes b = output::WartsWriter(file_info()).trace(ipv4_trace());
  const TraceRecord t = read_trace(b);
  // src, dst, the two routers: the second reply of TTL 1 and the
  // destination's replies refer to the table.
  const std::vector<std::string> table = {"10.0.0.2", "192.0.2.7", "198.51.100.1", "203.0.113.9"};
  EXPECT_EQ(t.table, table);
  // A second record starts its own table: it defines its addresses again.
  Bytes two = b;
  append(two, b);
  EXPECT_EQ(read_trace(Bytes(two.begin() + static_cast<std::ptrdiff_t>(b.size()), two.end())).table, table);
}

TEST(Warts, Ipv6TraceUsesIcmp6TypesAndSixteenByteAddresses) {
  const TraceRecord t = read_trace(output::WartsWriter(file_info()).trace(ipv6_trace(), 72));
  EXPECT_EQ(t.src, "2001:db8::2");
  EXPECT_EQ(t.dst, "2001:db8:1::7");
  EXPECT_EQ(t.present.count(12), 1u) << "probe size given";
  ASSERT_EQ(t.hops.size(), 2u);
  EXPECT_EQ(t.hops[0].addr, "2001:db8::1");
  EXPECT_EQ(t.hops[0].icmp, 0x0300u);  // ICMPv6 time exceeded
  EXPECT_EQ(t.hops[1].addr, "2001:db8:1::7");
  EXPECT_EQ(t.hops[1].probe_ttl, 3u);
  EXPECT_EQ(t.hops_probed, 3u);
}

TEST(Warts, StopReasonsMapToScampers) {
  core::TraceResult t = ipv4_trace();
  EXPECT_EQ(output::warts::stop_reason(t), output::warts::stop_completed);
  t.reached = false;
  t.hops.pop_back();
  t.reason = core::StopReason::gaplimit;
  EXPECT_EQ(output::warts::stop_reason(t), output::warts::stop_gaplimit);
  t.reason = core::StopReason::maxttl;
  EXPECT_EQ(output::warts::stop_reason(t), output::warts::stop_hoplimit);
  t.reason = core::StopReason::closed;
  EXPECT_EQ(output::warts::stop_reason(t), output::warts::stop_halted);
  t.reason = core::StopReason::stopped;
  EXPECT_EQ(output::warts::stop_reason(t), output::warts::stop_halted);
  t.hops.back().replies[0].kind = core::ReplyKind::unreachable;
  t.hops.back().replies[0].icmp_code = 13;
  EXPECT_EQ(output::warts::stop_reason(t), output::warts::stop_unreach);
  const TraceRecord r = read_trace(output::WartsWriter(file_info()).trace(t));
  EXPECT_EQ(r.hops.back().icmp, 0x030du);  // unreachable, administratively prohibited
}

namespace {

// A file of several traces, as the programs write it.
std::string write_file(const std::vector<core::TraceResult>& traces) {
  const output::WartsWriter writer(file_info());
  Bytes file = writer.file_start();
  for (const auto& t : traces) append(file, writer.trace(t));
  append(file, writer.file_end(std::chrono::seconds(1'795'773'800)));
  const std::string path = ::testing::TempDir() + "nfqtrace_warts_test.warts";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(file.data()),
                                              static_cast<std::streamsize>(file.size()));
  return path;
}

std::vector<core::TraceResult> three_traces() {
  core::TraceResult third = ipv4_trace();
  third.round = 2;
  third.hops[2].replies[0].addr = testpkt::addr("203.0.113.10");
  return {ipv4_trace(), ipv6_trace(), third};
}

}  // namespace

TEST(Warts, ScampersJsonReaderSeesTheSameHops) {
  if (!formats::have_program("sc_warts2json")) GTEST_SKIP() << "scamper is not installed";
  const auto traces = three_traces();
  const auto result = formats::run("sc_warts2json " + write_file(traces));
  ASSERT_TRUE(result.ok) << result.out;
  std::istringstream lines(result.out);
  std::string line;
  std::vector<nlohmann::json> read;
  while (std::getline(lines, line))
    if (auto j = nlohmann::json::parse(line); j["type"] == "trace") read.push_back(j);
  ASSERT_EQ(read.size(), traces.size()) << result.out;
  for (std::size_t i = 0; i < traces.size(); ++i) {
    const core::TraceResult& t = traces[i];
    const nlohmann::json& j = read[i];
    SCOPED_TRACE(j.dump());
    EXPECT_EQ(j["method"], "tcp-ack");
    EXPECT_EQ(j["src"], t.flow.src.to_string());
    EXPECT_EQ(j["dst"], t.flow.dst.to_string());
    EXPECT_EQ(j["sport"], t.flow.sport);
    EXPECT_EQ(j["dport"], t.flow.dport);
    EXPECT_EQ(j["stop_reason"], "COMPLETED");
    EXPECT_EQ(j["start"]["sec"], std::chrono::duration_cast<std::chrono::seconds>(t.start.wall).count());
    std::vector<const core::Reply*> replies;
    std::vector<std::uint8_t> ttls;
    std::vector<unsigned> attempts;
    for (const core::Hop& h : t.hops)
      for (const core::Reply& r : h.replies) {
        attempts.push_back(replies.empty() || ttls.back() != h.ttl ? 1 : attempts.back() + 1);
        replies.push_back(&r);
        ttls.push_back(h.ttl);
      }
    ASSERT_EQ(j["hops"].size(), replies.size());
    for (std::size_t k = 0; k < replies.size(); ++k) {
      const nlohmann::json& hop = j["hops"][k];
      EXPECT_EQ(hop["probe_ttl"], ttls[k]);
      EXPECT_EQ(hop["probe_id"], attempts[k]);
      EXPECT_EQ(hop["addr"], replies[k]->addr.to_string());
      // sc_warts2json prints milliseconds with 3 decimals: within 1 µs.
      const double want_ms = std::chrono::duration<double, std::milli>(replies[k]->rtt).count();
      EXPECT_NEAR(hop["rtt"].get<double>(), want_ms, 0.0011);
      EXPECT_EQ(hop["reply_ttl"], replies[k]->reply_ttl);
      if (replies[k]->kind == core::ReplyKind::destination) {
        EXPECT_EQ(hop["tcp_flags"], output::warts::tcp_ack);
      } else {
        EXPECT_EQ(hop["icmp_type"], t.flow.family() == wire::Family::v4 ? 11 : 3);
        EXPECT_EQ(hop["icmp_q_ttl"], replies[k]->quoted_ttl);
      }
      if (!replies[k]->mpls.empty()) {
        ASSERT_TRUE(hop.contains("icmpext")) << hop.dump();
        EXPECT_EQ(hop["icmpext"][0]["mpls_labels"][0]["mpls_label"], replies[k]->mpls[0].label);
      }
    }
  }
}

TEST(Warts, ScampersTextReaderSeesTheSameHops) {
  if (!formats::have_program("sc_warts2text")) GTEST_SKIP() << "scamper is not installed";
  const auto result = formats::run("sc_warts2text " + write_file(three_traces()));
  ASSERT_TRUE(result.ok) << result.out;
  // traceroute's layout: a line per TTL, "*" for a silent one, milliseconds
  // with 3 decimals.
  EXPECT_NE(result.out.find("traceroute from 10.0.0.2 to 192.0.2.7"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 1  198.51.100.1  1.234 ms"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 2  *"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 3  203.0.113.9  12.410 ms"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 4  192.0.2.7  20.001 ms"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("traceroute from 2001:db8::2 to 2001:db8:1::7"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 1  2001:db8::1  0.800 ms"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 3  2001:db8:1::7  3.333 ms"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find(" 3  203.0.113.10  12.410 ms"), std::string::npos) << result.out;
}
