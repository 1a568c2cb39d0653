// The engine driven by hand: one outgoing data packet in, its decisions out.
#include <array>
#include <cstdio>
#include <string>
#include <variant>

#include "nfqtrace/base/overloaded.hpp"
#include "nfqtrace/core/engine.hpp"
#include "nfqtrace/output/format.hpp"

using namespace nfqtrace;
using namespace std::chrono_literals;

int main() {
  // IPv4 TCP, 10.0.0.2:40000 -> 192.0.2.7:443, seq 1000, ACK|PSH, 160 bytes of data.
  std::array<std::uint8_t, 200> bytes{0x45, 0, 0, 200, 0, 1, 0x40, 0, 64, 6, 0, 0,
                                     10, 0, 0, 2, 192, 0, 2, 7,
                                     0x9c, 0x40, 0x01, 0xbb, 0, 0, 0x03, 0xe8, 0, 0, 0, 1,
                                     0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0};
  for (std::size_t i = 40; i < bytes.size(); ++i) bytes[i] = 'x';

  core::EngineConfig config;  // the defaults nfqtrace runs with
  config.trace.max_ttl = 8;
  core::Engine engine(config);
  const core::Instant now{1s, 1'795'773'600s};  // monotonic and wall clock: told, never read

  // After every event: everything the engine decided, in the order it did.
  const auto drain = [&engine, &now] {
    while (auto decision = engine.poll()) {
      std::visit(Overloaded{
                     [](const core::ProbePacket& probe) {  // send it
                       std::printf("probe of %u bytes\n", unsigned{probe.size});
                     },
                     [](const core::HopEvent& hop) { std::printf("reply at ttl %d\n", hop.ttl); },
                     [](const core::TraceResult& trace) {
                       std::fputs(output::trace_text(trace).c_str(), stdout);
                     },
                     [](const core::PathChange& change) {  // only with TraceParams::repeat
                       std::fputs(output::path_change_text(change).c_str(), stdout);
                     },
                     [&](const core::SkipChange& change) {  // no conntrack here: not applied
                       engine.handle(core::SkipApplied{change, false, false}, now);
                     }},
                 *decision);
    }
  };

  auto packet = wire::parse_tcp_packet(wire::Bytes(bytes), bytes.size());
  if (!packet) {
    std::printf("unreadable: %s\n", std::string(wire::to_string(packet.error())).c_str());
    return 1;
  }
  // The verdict comes at once: accept (with a lower TTL only in mangle mode).
  const core::Verdict verdict = engine.on_outgoing(*packet, core::PacketMeta{}, now);
  std::printf("accept%s\n", verdict.set_ttl ? " with a lower TTL" : "");
  drain();

  // Then on_icmp and on_peer_packet with the replies, on_timer at
  // poll_timeout(); here the trace is stopped at once.
  engine.stop(now);
  drain();
  return 0;
}
