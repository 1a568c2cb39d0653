// What goes into the engine beside packets and the time, and what comes out
// of it. Verdicts are immediate (the return value of Engine::on_outgoing);
// every other decision is an Output, handed out by Engine::poll() in the
// order it was made: a probe before the reply that answers it, a trace's
// replies before the trace's end, the end before the skip mark that follows.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <variant>

#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/result.hpp"
#include "nfqtrace/wire/bytes.hpp"
#include "nfqtrace/wire/probe_builder.hpp"

namespace nfqtrace::core {

// The verdict on one outgoing packet: always accept, in mangle mode
// possibly with a lower TTL.
struct Verdict {
  std::optional<std::uint8_t> set_ttl;
};

// Where an outgoing packet came from, beyond its bytes.
struct PacketMeta {
  std::uint32_t out_ifindex = 0;
  bool gso = false;     // a GSO super-packet: never mangled
  bool copied = false;  // a copy: the packet itself has left, no verdict applies
  bool forwarded = false;  // it came in by an interface: a connection this host forwards
};

// Output: send this probe, a whole IP packet, out of `out_ifindex` (the
// interface its original left by).
struct ProbePacket {
  std::array<std::uint8_t, wire::max_probe_size> bytes;
  std::uint16_t size = 0;
  std::uint32_t out_ifindex = 0;
  wire::Bytes view() const { return wire::Bytes(bytes.data(), size); }
};

// How a flow's packets reach the engine: through the queue (in dup mode the
// runtime's rules may copy them instead: to on_outgoing all the same), or
// past it (a conntrack mark the runtime's rules match first), with what
// still comes.
enum class Skip : std::uint8_t {
  none,     // through the queue, or copied: each to on_outgoing
  all,      // past the queue; of the peer's packets only SYN, FIN and RST
  watch,    // past the queue; copies of its outgoing packets come to on_logged
            // (it waits for a retransmission: --trigger retransmit)
  replies,  // past the queue, but the peer's packets still come (a round's
            // probes are out and it waits for their answers)
  wave,     // as `replies`, but its next outgoing packet (not a SYN, FIN or
            // RST) is copied to on_outgoing, and then the rules themselves
            // turn it to `replies` (EngineConfig::one_copy_waves): the one
            // packet a round's next wave needs, and no more
  queued,   // through the queue where the rules copy the others' packets: a
            // round in mangle mode, whose verdicts set its packets' TTL
            // (EngineConfig::queue_by_mark)
};

// Whether a flow's packets pass the queue by (and so need not be idle when
// unseen).
constexpr bool passes_queue(Skip skip) { return skip != Skip::none && skip != Skip::queued; }

// Output: from now on, `flow`'s packets reach the engine as `skip` says. A
// skipping flow is asked to skip again now and then (`recheck`): the answer
// says whether its connection still exists. Every SkipChange is answered
// with SkipApplied.
struct SkipChange {
  FlowKey flow;
  Skip skip = Skip::all;
  bool recheck = false;
  bool skipping() const { return passes_queue(skip); }
};

// Input: what became of a SkipChange. Not applied, the flow keeps coming
// through the queue; a flow whose connection is gone is forgotten.
struct SkipApplied {
  SkipChange change;
  bool ok = false;
  bool connection_gone = false;
};

// Everything the engine decides besides verdicts: a probe to send, a reply
// matched to its probe (HopEvent), a trace that ended (TraceResult), the
// path that changed since the flow's last round (after that round's
// TraceResult), a skip mark to set or clear.
using Output = std::variant<ProbePacket, HopEvent, TraceResult, PathChange, SkipChange>;

}  // namespace nfqtrace::core
