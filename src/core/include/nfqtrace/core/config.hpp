// What a trace does, and what the engine does for all of them. The defaults
// here are the defaults everywhere: the command line, the cooperating
// server's and the engine's.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::core {

using namespace std::chrono_literals;

enum class Mode : std::uint8_t {
  dup,     // originals pass unchanged; probes are extra TTL-limited copies
  mangle,  // the TTL of an original is lowered (it is lost when it expires)
};

// What one flow's traces carry: the engine's defaults, or a flow's own (a
// cooperating client chooses those of the trace the server runs for it).
struct TraceParams {
  Mode mode = Mode::dup;
  std::uint8_t max_ttl = 30;
  std::uint8_t ttl_repeat = 3;    // probes per TTL
  std::uint32_t packet_freq = 6;  // mangle: packets passing between two mangled ones
  Duration timeout = 1s;          // wait for a probe's reply
  std::uint8_t gap_limit = 5;     // consecutive silent TTLs that end a trace
  // Dup mode's first pass probes TTLs up to this at once, and further only
  // as far as the answers so far (plus the gap limit) say the path may go:
  // probes beyond the destination are duplicates the peer must answer.
  std::uint8_t first_window = 16;
  std::optional<Duration> repeat;  // trace an open flow again this often

  // At least 1 where 0 would mean nothing at all.
  TraceParams sanitized() const;
};

// When a flow's round begins: with its first data (start), or when its
// sender retransmits (retransmit: a connection in trouble, at the moment of
// the trouble; with --repeat at most once an interval, else once).
enum class Trigger : std::uint8_t { start, retransmit };

// What the engine does for every flow.
struct EngineConfig {
  TraceParams trace;                // for flows without parameters of their own
  std::uint32_t max_flows = 1000;   // traces running at once
  Duration idle_timeout = 60s;      // a flow silent this long is closed
  std::uint32_t seed = 1;           // for probe IP IDs; tests fix it
  // Probes per second across all flows, so routers' ICMP rate limits are
  // respected; a wave larger than what is left waits for later packets.
  // 0: no limit.
  double probes_per_second = 1000;
  std::uint32_t probe_burst = 100;
  // Fraction of new flows traced (1: all). Chosen by a hash of the flow, so
  // a flow is in or out for good.
  double sample = 1.0;
  // Doubletree-style stop set: what traces of the last this-long learned is
  // not probed again (PathMemory). Off when unset. Dup mode only.
  std::optional<Duration> stop_set;
  // The runtime can let flows skip the queue (a conntrack mark its rules
  // match first): flows with no trace running are asked to (SkipChange).
  bool skip_marks = false;
  // ... and its rules can hand over a flow's next packet alone: a flow that
  // waits for the packet of its next wave asks for Skip::wave, not none.
  bool one_copy_waves = false;
  // ... and its rules copy the flows' packets (dup mode) but queue those of
  // a flow whose mark asks for it (Skip::queued): flows may ask for mangle
  // mode (a cooperating server's clients), whose verdicts set the TTL.
  bool queue_by_mark = false;
  Trigger trigger = Trigger::start;
};

// Which packets the engine traces when the queue hands it others too (with
// --no-rules the user's own rule decides what is queued).
struct FlowFilter {
  std::vector<std::uint16_t> dports, sports;
  std::optional<wire::Address> host;
  // Trace only the flows named by Engine::request_trace (the server traces
  // each client's connection once the client asks, with its parameters)...
  bool requested_only = false;
  // ... and the connections this host forwards, unasked, with the default
  // parameters (nfqtrace-server --forward: no cooperating end to ask).
  bool forwarded_unasked = false;

  bool empty() const { return dports.empty() && sports.empty() && !host; }
};

}  // namespace nfqtrace::core
