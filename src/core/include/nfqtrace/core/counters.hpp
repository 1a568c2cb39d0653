// What the engine saw and did, for the summary at exit and for tests.
#pragma once

#include <cstdint>

namespace nfqtrace::core {

struct EngineCounters {
  std::uint64_t packets = 0;             // outgoing packets seen
  std::uint64_t packets_not_selected = 0;
  std::uint64_t flows_refused = 0;       // had to wait for a place (once a round)
  std::uint64_t flows_waited_past = 0;   // waited past the queue, then were let back
  std::uint64_t probes_sent = 0;
  std::uint64_t waves = 0;               // dup: probes copied from one packet
  std::uint64_t probes_unbuildable = 0;  // e.g. an IPv6 routing header
  std::uint64_t packets_mangled = 0;
  std::uint64_t icmp_matched = 0;
  // ICMP errors that quote TCP but no probe of ours, by why: nothing an
  // off-path sender can guess (it knows the 5-tuple at best) matches.
  std::uint64_t icmp_no_flow = 0;        // a flow we do not trace
  std::uint64_t icmp_no_trace = 0;       // a flow between its traces
  std::uint64_t icmp_no_probe = 0;       // no probe with that sequence, length, IP ID
  std::uint64_t icmp_repeated = 0;       // a second reply to an answered probe
  std::uint64_t icmp_late = 0;           // answered a TTL taken for silent
  std::uint64_t icmp_held = 0;           // named probes under a shift not yet confirmed
  std::uint64_t icmp_unconfirmed = 0;    // ... and their shift never was (at the round's end)
  std::uint64_t icmp_bad_extensions = 0; // RFC 4884 extensions that did not read
  std::uint64_t peer_packets = 0;
  std::uint64_t peer_resets_rejected = 0;  // a RST off the peer's window
  std::uint64_t peer_evidence = 0;       // the peer showed a probe reached it
  std::uint64_t peer_late = 0;           // ... one taken for silent (a late D-SACK)
  std::uint64_t traces_started = 0;
  std::uint64_t traces_ended = 0;
  std::uint64_t flows_skipped = 0;       // sent past the queue after their trace
  std::uint64_t flows_not_sampled = 0;   // left out by --sample
  std::uint64_t probes_deferred = 0;     // waited for the --pps budget
  std::uint64_t traces_from_stop_set = 0;  // began below TTL 1 (--stop-set)
  std::uint64_t flows_watched = 0;       // waited for a retransmission (--trigger)
  std::uint64_t packets_logged = 0;      // copies of watched flows' packets (NFLOG)
  std::uint64_t retransmissions = 0;     // seen in flows waiting for one
  std::uint64_t traces_triggered = 0;    // rounds a retransmission began
  // A flow moved between phases the lifecycle does not allow: a bug, which
  // the fuzz target and the tests watch for. Always 0.
  std::uint64_t illegal_transitions = 0;

  std::uint64_t icmp_unmatched() const {
    return icmp_no_flow + icmp_no_trace + icmp_no_probe + icmp_repeated;
  }
};

}  // namespace nfqtrace::core
