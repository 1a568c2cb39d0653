// The trace engine: fed the packets of the traced connections, the ICMP
// errors and the time; it answers with verdicts and hands out probes to send,
// replies and finished traces. No system calls, no clock, no I/O: the
// runtime (src/runtime) does those, and tests drive it with made-up packets
// and a fake clock.
//
// Every outgoing packet gets exactly one verdict, at once, and it is always
// "accept" (in mangle mode possibly with a lower TTL): the connection never
// waits for the engine.
#pragma once

#include <array>
#include <deque>
#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/path_memory.hpp"
#include "nfqtrace/core/result.hpp"
#include "nfqtrace/core/trace.hpp"
#include "nfqtrace/wire/icmp_error.hpp"
#include "nfqtrace/wire/probe_builder.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::core {

struct Verdict {
  std::optional<std::uint8_t> set_ttl;  // mangle: accept with this TTL
};

// A probe to send: a whole IP packet.
struct ProbePacket {
  std::array<std::uint8_t, wire::max_probe_size> bytes;
  std::uint16_t size = 0;
  std::uint32_t out_ifindex = 0;  // leave like the original did
  wire::Bytes view() const { return wire::Bytes(bytes.data(), size); }
};

// Where an outgoing packet came from, beyond its bytes.
struct PacketMeta {
  std::uint32_t out_ifindex = 0;
  bool gso = false;  // a GSO super-packet: never mangled
};

// A flow whose packets should stop (skip = true) or start again (false)
// coming through the queue. A skipping flow is asked to skip again now and
// then (`recheck`): the answer says whether its connection still exists.
struct SkipChange {
  FlowKey flow;
  bool skip = true;
  bool recheck = false;
};

struct EngineCounters {
  std::uint64_t packets = 0;             // outgoing packets seen
  std::uint64_t packets_not_selected = 0;
  std::uint64_t flows_refused = 0;       // had to wait for a trace to end (once a flow)
  std::uint64_t flows_waited_past = 0;   // waited past the queue, then were let back
  std::uint64_t probes_sent = 0;
  std::uint64_t probes_unbuildable = 0;  // e.g. an IPv6 routing header
  std::uint64_t packets_mangled = 0;
  std::uint64_t icmp_matched = 0;
  // ICMP errors that quote TCP but no probe of ours, by why: nothing an
  // off-path sender can guess (it knows the 5-tuple at best) matches.
  std::uint64_t icmp_no_flow = 0;        // a flow we do not trace
  std::uint64_t icmp_no_trace = 0;       // a flow between its traces
  std::uint64_t icmp_no_probe = 0;       // no probe with that sequence, length, IP ID
  std::uint64_t icmp_repeated = 0;       // a second reply to an answered probe
  std::uint64_t peer_packets = 0;
  std::uint64_t peer_resets_rejected = 0;  // a RST off the peer's window
  std::uint64_t peer_evidence = 0;       // the peer showed a probe reached it
  std::uint64_t traces_started = 0;
  std::uint64_t traces_ended = 0;
  std::uint64_t flows_skipped = 0;       // sent past the queue after their trace
  std::uint64_t flows_not_sampled = 0;   // left out by --sample
  std::uint64_t probes_deferred = 0;     // waited for the --pps budget
  std::uint64_t traces_from_stop_set = 0;  // began below TTL 1 (--stop-set)

  std::uint64_t icmp_unmatched() const {
    return icmp_no_flow + icmp_no_trace + icmp_no_probe + icmp_repeated;
  }
};

class Engine {
 public:
  explicit Engine(TraceConfig config, FlowFilter filter = {});
  ~Engine();

  // An outgoing packet of a selected connection, from the queue.
  Verdict on_outgoing(const wire::TcpPacket& packet, const PacketMeta& meta, Instant now);
  // A packet from the peer of a traced connection (its ACKs, SACKs, FIN, RST).
  void on_peer_packet(const wire::TcpPacket& packet, Instant at);
  // An ICMP/ICMPv6 error that quotes TCP. True when it answers a probe of
  // ours (then it is ours alone: the connection's own TCP need not see it).
  bool on_icmp(const wire::IcmpError& error, Instant at);
  // The deadline has passed (or any time: it is cheap to call early).
  void on_timer(Instant now);
  // Traces `flow` with its own parameters from its next packet on (with
  // FlowFilter::requested_only, only such flows are traced).
  void request_trace(const FlowKey& flow, const TraceConfig& config, Instant now);
  // The flow is gone (its connection closed): ends its trace as `closed`
  // and forgets it at once.
  void forget(const FlowKey& flow, Instant now);
  // Ends every running trace with reason `stopped`; no probe after this.
  void stop(Instant now);
  std::optional<Duration> next_deadline() const;

  // Decisions, to be drained (and cleared) by the caller after each call.
  std::vector<ProbePacket>& probes() { return probes_; }
  std::vector<HopEvent>& hop_events() { return hop_events_; }
  std::vector<TraceResult>& finished_traces() { return finished_; }
  std::vector<SkipChange>& skip_changes() { return skip_changes_; }
  // What became of a skip change: applied, or not (the flow then keeps
  // coming through the queue; a flow whose connection is gone is forgotten).
  void skip_applied(const SkipChange& change, bool ok, bool connection_gone, Instant now);

  const EngineCounters& counters() const { return counters_; }
  std::size_t flow_count() const { return flows_.size(); }
  std::size_t running_traces() const { return running_; }
  const TraceConfig& config() const { return config_; }

 private:
  // The first bytes of the last data the flow sent: pure ACKs carry no
  // payload, so their probes are built from these (a byte-identical copy of
  // data the peer already has is a harmless duplicate to it).
  struct SentBytes {
    std::uint32_t seq = 0;
    std::uint16_t len = 0;
    std::array<std::uint8_t, 128> bytes{};
  };

  struct Flow {
    std::shared_ptr<const TraceConfig> config;  // the engine's, or the flow's own
    std::uint32_t rounds = 0;         // rounds started so far
    Duration round_started{0};
    Duration last_seen{0};
    std::unique_ptr<Trace> trace;     // the round running now, if any
    // FIN or RST seen: the flow lingers a while, so that the last packets of
    // its close start no new trace.
    bool closing = false;
    Duration closed_at{0};
    bool skipping = false;            // its packets bypass the queue
    bool unsampled = false;           // left out by --sample: never traced
    // No room for its trace yet: it waits (past the queue when it can),
    // first come first served; admitted: a place is kept for it.
    bool waiting = false;
    bool admitted = false;
    std::uint32_t packets_since_probe = 0;
    std::uint32_t packets_since_data = 0;  // a long run: a flow that only ACKs
    Duration idle_check{0};           // when the pending idle check fires
    // Where the peer's data stands: the last ACK the flow sent. A RST from
    // the peer must fall near it (an off-path sender cannot know it).
    bool ack_known = false;
    std::uint32_t acked = 0;
    SentBytes sent;
  };
  struct Timer {
    Duration at;
    FlowKey key;
    bool operator>(const Timer& o) const { return at > o.at; }
  };

  bool selected(const wire::TcpPacket& packet) const;
  Flow* find_or_create(const FlowKey& key, Instant now);
  void maybe_start_round(const FlowKey& key, Flow& flow, Instant now);
  void probe_dup(Flow& flow, const wire::TcpPacket& packet, const PacketMeta& meta, Instant now);
  std::optional<std::uint8_t> probe_mangle(Flow& flow, const wire::TcpPacket& packet,
                                           const PacketMeta& meta, Instant now);
  // Collects new replies and a finished round; returns false when the flow
  // is gone.
  bool settle(const FlowKey& key, Instant now);
  void take_replies(Flow& flow);  // its new replies become hop events
  void close_flow(const FlowKey& key, Instant now);
  // A SYN on the ports of a flow we knew: a new connection, traced afresh.
  void restart(const FlowKey& key, Instant now);
  // False when the flow was idle and is gone.
  bool on_idle_check(const FlowKey& key, Flow& flow, Instant now);
  void expire_idle(const FlowKey& key, Instant now);
  void arm(const FlowKey& key, Duration at);
  std::uint16_t next_ip_id();
  // Takes up to `wanted` probes from the --pps budget; how many it may send.
  std::size_t take_probe_budget(std::size_t wanted, Duration now);
  bool sampled(const FlowKey& key) const;
  // A flow with no room for its trace: waits its turn (false: not now).
  bool make_room(const FlowKey& key, Flow& flow, Duration now);
  // Lets waiting flows back, first come first served, while there is room.
  void admit_waiting(Duration now);
  void leave_waiting(Flow& flow);  // it closed or went: no place to keep

  TraceConfig config_;
  std::shared_ptr<const TraceConfig> default_config_;
  FlowFilter filter_;
  std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
  std::optional<PathMemory> memory_;  // --stop-set
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::size_t running_ = 0;
  // Traces running at once: --max-flows, and no more than the --pps budget
  // can serve (a flow beyond that would only wait in the queue).
  std::size_t trace_limit_ = 0;
  std::size_t admitting_ = 0;      // places kept for admitted flows
  std::deque<FlowKey> waiting_;    // in order of arrival; gone flows are skipped
  bool stopped_ = false;
  std::uint32_t rng_;
  double probe_tokens_;
  Duration tokens_at_{0};

  std::vector<ProbePacket> probes_;
  std::vector<HopEvent> hop_events_;
  std::vector<TraceResult> finished_;
  std::vector<SkipChange> skip_changes_;
  std::vector<std::uint8_t> wanted_;  // scratch, kept to avoid allocation
  EngineCounters counters_;
};

}  // namespace nfqtrace::core
