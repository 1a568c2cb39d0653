// The engine fed any sequence of outgoing packets, peer packets, ICMP errors
// and clock ticks. Beyond not crashing, it must keep its promises: every
// verdict accepts (a TTL only in mangle mode), probes parse and stay within
// --maxttl, traces never report more hops than --maxttl, no more traces run
// than --max-flows. The first byte also turns on the stop set, skipping
// past the queue (skip changes answered as the opcodes say) and a small
// --max-flows and --pps.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nfqtrace/core/engine.hpp"

using namespace nfqtrace;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  core::TraceConfig config;
  config.mode = (data[0] & 1) ? core::Mode::mangle : core::Mode::dup;
  config.max_ttl = static_cast<std::uint8_t>(1 + (data[0] >> 1) % 16);
  config.ttl_repeat = 2;
  config.packet_freq = 1;
  config.timeout = std::chrono::milliseconds(100);
  config.idle_timeout = std::chrono::seconds(2);
  config.repeat = std::chrono::milliseconds(500);
  if (data[0] & 0x20) config.stop_set = std::chrono::seconds(5);
  config.skip_finished_flows = (data[0] & 0x40) != 0;
  if (data[0] & 0x80) {
    config.max_flows = 2;
    config.probes_per_second = 50;
    config.probe_burst = 8;
  }
  core::Engine engine(config);
  static const wire::Address from6 = *wire::Address::parse("2001:db8:1::1");
  static const wire::Address to6 = *wire::Address::parse("2001:db8::2");

  core::Instant now{std::chrono::seconds(1), std::chrono::seconds(1'700'000'000)};
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
        if (v.set_ttl && (config.mode != core::Mode::mangle || *v.set_ttl > config.max_ttl))
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
    for (const auto& probe : engine.probes()) {
      auto p = wire::parse_tcp_packet(probe.view(), probe.size);
      if (!p || p->ttl == 0 || p->ttl > config.max_ttl) __builtin_trap();
    }
    engine.probes().clear();
    // The runtime's answer to skip changes: applied, failed, or gone.
    for (int rounds = 0; rounds < 4 && !engine.skip_changes().empty(); ++rounds) {
      const std::vector<core::SkipChange> changes = std::move(engine.skip_changes());
      engine.skip_changes().clear();
      for (const auto& c : changes) engine.skip_applied(c, (op & 8) == 0, (op & 16) != 0, now);
    }
    if (engine.running_traces() > config.max_flows) __builtin_trap();
    for (const auto& t : engine.finished_traces())
      if (t.hops.size() > config.max_ttl) __builtin_trap();
    engine.finished_traces().clear();
    engine.hop_events().clear();
  }
  engine.stop(now);
  return 0;
}
