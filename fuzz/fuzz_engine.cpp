// The engine fed any sequence of outgoing packets, peer packets, ICMP errors
// and clock ticks. Beyond not crashing, it must keep its promises: every
// verdict accepts (a TTL only in mangle mode), probes parse and stay within
// --maxttl, traces never report more hops than --maxttl, no more traces run
// than --max-flows, no reply of a round comes after that round's end but a late one, and
// no flow ever moves between phases its lifecycle does not allow. The first
// byte also turns on the stop set, skipping past the queue (skip changes
// answered as the opcodes say) and a small --max-flows and --pps.
#include <cstddef>
#include <cstdint>
#include <set>
#include <tuple>
#include <variant>
#include <vector>

#include "nfqtrace/base/overloaded.hpp"
#include "nfqtrace/core/engine.hpp"

using namespace nfqtrace;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  core::EngineConfig config;
  core::TraceParams& trace = config.trace;
  trace.mode = (data[0] & 1) ? core::Mode::mangle : core::Mode::dup;
  trace.max_ttl = static_cast<std::uint8_t>(1 + (data[0] >> 1) % 16);
  trace.ttl_repeat = 2;
  trace.packet_freq = 1;
  trace.timeout = std::chrono::milliseconds(100);
  trace.repeat = std::chrono::milliseconds(500);
  config.idle_timeout = std::chrono::seconds(2);
  if (data[0] & 0x20) config.stop_set = std::chrono::seconds(5);
  config.skip_marks = (data[0] & 0x40) != 0;
  if (data[0] & 0x80) {
    config.max_flows = 2;
    config.probes_per_second = 50;
    config.probe_burst = 8;
  }
  core::Engine engine(config);
  static const wire::Address from6 = *wire::Address::parse("2001:db8:1::1");
  static const wire::Address to6 = *wire::Address::parse("2001:db8::2");
  // Rounds whose end was handed out: none of their replies may follow (while
  // the engine still knows the flow).
  std::set<std::tuple<core::FlowKey, std::uint32_t>> ended;

  core::Instant now{std::chrono::seconds(1), std::chrono::seconds(1'700'000'000)};
  // Takes every decision; the runtime's answer to skip changes: applied,
  // failed, or gone, as `op` says.
  const auto drain = [&](std::uint8_t op) {
    int answers = 0;
    while (auto decision = engine.poll()) {
      std::visit(Overloaded{
                     [&](const core::ProbePacket& probe) {
                       auto p = wire::parse_tcp_packet(probe.view(), probe.size);
                       if (!p || p->ttl == 0 || p->ttl > trace.max_ttl) __builtin_trap();
                     },
                     [&](const core::HopEvent& hop) {
                       // Only a late reply (to a TTL taken for silent) may.
                       if (ended.contains({hop.flow, hop.round}) && !hop.reply.late)
                         __builtin_trap();
                     },
                     [&](const core::TraceResult& t) {
                       if (t.hops.size() > trace.max_ttl) __builtin_trap();
                       ended.insert({t.flow, t.round});
                     },
                     [&](const core::PathChange& c) {
                       // Only after the round it compares has ended.
                       if (!ended.contains({c.flow, c.round}) || c.previous_round >= c.round)
                         __builtin_trap();
                     },
                     [&](const core::SkipChange& change) {
                       // Bounded, so that a pathological loop shows as a hang.
                       if (++answers > 1000) __builtin_trap();
                       engine.handle(core::SkipApplied{change, (op & 8) == 0, (op & 16) != 0}, now);
                     }},
                 *decision);
    }
    if (engine.running_traces() > config.max_flows) __builtin_trap();
    if (engine.counters().illegal_transitions != 0) __builtin_trap();
    // A flow the engine forgot comes back as a new one (a new connection on
    // the same ports, perhaps by the very packet that ended the old one's
    // round: then it is fresh), its rounds counted from 1 again.
    std::erase_if(ended, [&](const auto& e) {
      const auto phase = engine.phase(std::get<0>(e));
      return !phase || *phase == core::Phase::fresh;
    });
  };

  std::size_t at = 1;
  while (at + 3 <= size) {
    const std::uint8_t op = data[at];
    now.mono += std::chrono::milliseconds(data[at + 1]);
    now.wall += std::chrono::milliseconds(data[at + 1]);
    const std::size_t len = std::min<std::size_t>(data[at + 2], size - at - 3);
    const wire::Bytes bytes(data + at + 3, len);
    at += 3 + len;
    switch (op % 4) {
      case 0: {
        auto p = wire::parse_tcp_packet(bytes, static_cast<std::uint32_t>(len));
        if (!p) break;
        const core::Verdict v = engine.on_outgoing(*p, core::PacketMeta{}, now);
        if (v.set_ttl && (trace.mode != core::Mode::mangle || *v.set_ttl > trace.max_ttl))
          __builtin_trap();
        break;
      }
      case 1: {
        auto p = wire::parse_tcp_packet(bytes, static_cast<std::uint32_t>(len));
        if (p) engine.on_peer_packet(*p, now);
        break;
      }
      case 2: {
        auto e = (op & 4) ? wire::parse_icmp6(bytes, from6, to6, 60) : wire::parse_icmp4(bytes);
        if (e) engine.on_icmp(*e, now);
        break;
      }
      case 3:
        engine.on_timer(now);
        break;
    }
    drain(op);
  }
  engine.stop(now);
  drain(0);
  if (engine.poll_timeout()) __builtin_trap();  // nothing waits once stopped
  return 0;
}
