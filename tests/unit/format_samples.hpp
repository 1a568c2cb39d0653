// Finished traces the result-format tests share: IPv4 and IPv6, each with
// a silent TTL and the destination reached.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "nfqtrace/core/result.hpp"
#include "nfqtrace/output/address_book.hpp"
#include "packets.hpp"

namespace formats {

using namespace std::chrono_literals;
using namespace nfqtrace;

inline core::Reply reply(const char* addr, core::Duration rtt, std::uint8_t reply_ttl,
                         core::ReplyKind kind = core::ReplyKind::time_exceeded) {
  core::Reply r;
  r.addr = testpkt::addr(addr);
  r.rtt = rtt;
  r.reply_ttl = reply_ttl;
  r.kind = kind;
  r.quoted_ttl = kind == core::ReplyKind::destination ? 0 : 1;
  return r;
}

// 10.0.0.2:41234 -> 192.0.2.7:443, 2026-11-27T10:00:00.123456Z: TTL 1
// answers twice (the second time with an MPLS label), TTL 2 is silent, TTL 3
// is a router, TTL 4 the destination.
inline core::TraceResult ipv4_trace() {
  core::TraceResult t;
  t.flow = core::FlowKey{testpkt::addr("10.0.0.2"), testpkt::addr("192.0.2.7"), 41234, 443};
  t.round = 1;
  t.start.wall = 1'795'773'600s + 123456us;
  t.end.wall = t.start.wall + 1250ms;
  t.reached = true;
  t.reason = core::StopReason::reached;
  t.probes_sent = 12;
  core::Hop h1{1, 3, {reply("198.51.100.1", 1234us, 255), reply("198.51.100.1", 1500us + 700ns, 255)}, {}, {}};
  h1.replies[1].mpls = {wire::MplsEntry{24001, 0, true, 1}};
  core::Hop h2{2, 3, {}, {}, core::Silence::timeout};
  core::Hop h3{3, 3, {reply("203.0.113.9", 12410us, 253)}, {}, {}};
  core::Hop h4{4, 3,
               {reply("192.0.2.7", 20001us, 61, core::ReplyKind::destination),
                reply("192.0.2.7", 19999us, 61, core::ReplyKind::destination)},
               {},
               {}};
  t.hops = {h1, h2, h3, h4};
  return t;
}

// [2001:db8::2]:50000 -> [2001:db8:1::7]:80: TTL 1 answers, TTL 2 silent
// (inferred), TTL 3 the destination.
inline core::TraceResult ipv6_trace() {
  core::TraceResult t;
  t.flow = core::FlowKey{testpkt::addr("2001:db8::2"), testpkt::addr("2001:db8:1::7"), 50000, 80};
  t.round = 2;
  t.start.wall = 1'795'773'700s + 500us;
  t.end.wall = t.start.wall + 900ms;
  t.reached = true;
  t.reason = core::StopReason::reached;
  t.probes_sent = 9;
  core::Hop h1{1, 3, {reply("2001:db8::1", 800us, 64)}, {}, {}};
  core::Hop h2{2, 3, {}, {}, core::Silence::inferred};
  core::Hop h3{3, 3, {reply("2001:db8:1::7", 3333us, 62, core::ReplyKind::destination)}, {}, {}};
  t.hops = {h1, h2, h3};
  return t;
}

// The standard output of a shell command, and whether it exited with 0.
struct CommandOutput {
  std::string out;
  bool ok = false;
};
inline CommandOutput run(const std::string& command) {
  CommandOutput result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  result.ok = pclose(pipe) == 0;
  return result;
}
inline bool have_program(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// Names and AS numbers the tests choose, by address.
class FakeBook final : public nfqtrace::output::AddressBook {
 public:
  std::map<nfqtrace::wire::Address, nfqtrace::output::AddressInfo> known;
  const nfqtrace::output::AddressInfo* find(const nfqtrace::wire::Address& addr) const override {
    const auto it = known.find(addr);
    return it == known.end() ? nullptr : &it->second;
  }
};

}  // namespace formats
