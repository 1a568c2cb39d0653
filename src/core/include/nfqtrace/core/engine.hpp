// The trace engine: fed the packets of the traced connections, the ICMP
// errors and the time; it answers each outgoing packet with a verdict at
// once, and hands out everything else it decides (probes to send, replies
// matched to their probes, traces that ended, skip marks) through poll(),
// in the order it decided them. No system calls, no clock, no I/O: the
// runtime (src/runtime) does those, and tests drive it with made-up packets
// and a fake clock.
//
// The caller:
//   * feeds each outgoing packet of a selected connection to on_outgoing and
//     applies the verdict (always "accept", in mangle mode possibly with a
//     lower TTL: the connection never waits for the engine);
//   * feeds the peer's packets to on_peer_packet, ICMP errors quoting TCP to
//     on_icmp (true: the error answers a probe and is ours alone);
//   * calls on_timer at poll_timeout();
//   * after each of these, drains poll(): sends each ProbePacket, reports
//     each HopEvent and TraceResult, applies each SkipChange and answers it
//     with handle(SkipApplied{...}) (which may queue more outputs).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "nfqtrace/base/output_queue.hpp"
#include "nfqtrace/core/admission.hpp"
#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/counters.hpp"
#include "nfqtrace/core/decisions.hpp"
#include "nfqtrace/core/flow.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/path_memory.hpp"
#include "nfqtrace/core/probe_budget.hpp"
#include "nfqtrace/wire/icmp_error.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::core {

class Engine {
 public:
  explicit Engine(EngineConfig config, FlowFilter filter = {});
  ~Engine();

  // An outgoing packet of a selected connection, from the queue.
  Verdict on_outgoing(const wire::TcpPacket& packet, const PacketMeta& meta, Instant now);
  // A packet from the peer of a traced connection (its ACKs, SACKs, FIN, RST).
  void on_peer_packet(const wire::TcpPacket& packet, Instant at);
  // A copy of a packet the runtime's log caught: the peer's (as
  // on_peer_packet), or an outgoing one of a flow watching for a
  // retransmission (it passed the queue by: no verdict).
  void on_logged(const wire::TcpPacket& packet, Instant at);
  // An ICMP/ICMPv6 error that quotes TCP. True when it answers a probe of
  // ours (then it is ours alone: the connection's own TCP need not see it).
  bool on_icmp(const wire::IcmpError& error, Instant at);
  // The deadline has passed (or any time: it is cheap to call early).
  void on_timer(Instant now);
  // The answer to a SkipChange.
  void handle(const SkipApplied& applied, Instant now);
  // Traces `flow` with its own parameters from its next packet on (with
  // FlowFilter::requested_only, only such flows are traced).
  void request_trace(const FlowKey& flow, const TraceParams& params, Instant now);
  // The flow is gone (its connection closed): ends its trace as `closed`
  // and forgets it at once.
  void forget(const FlowKey& flow, Instant now);
  // Ends every running trace with reason `stopped`; no probe after this.
  void stop(Instant now);

  // The next decision, oldest first; nothing once all are taken.
  std::optional<Output> poll() { return outputs_.poll(); }
  // When on_timer is next due (monotonic), if anything waits for time.
  std::optional<Duration> poll_timeout();

  const EngineCounters& counters() const { return counters_; }
  std::size_t flow_count() const { return flows_.size(); }
  std::size_t running_traces() const { return admission_.running(); }
  // The flows by where they are, for the metrics' gauges (a walk over all).
  struct FlowCounts {
    std::size_t tracked = 0, tracing = 0, waiting = 0, skipping = 0;
  };
  FlowCounts flow_counts() const {
    FlowCounts c{flows_.size(), 0, 0, 0};
    for (const auto& entry : flows_) {
      c.tracing += entry.second.phase == Phase::tracing;
      c.waiting += entry.second.phase == Phase::waiting;
      c.skipping += passes_queue(entry.second.skip);
    }
    return c;
  }
  const EngineConfig& config() const { return config_; }
  // Where `flow` is in its life, if the engine knows it.
  std::optional<Phase> phase(const FlowKey& flow) const;

 private:
  struct TimerEntry {
    Duration at;
    FlowKey flow;
    FlowTimer which;
    bool operator>(const TimerEntry& o) const { return at > o.at; }
  };

  bool selected(const wire::TcpPacket& packet) const;
  bool sampled(const FlowKey& key) const;
  Flow& find_or_create(const FlowKey& key, Instant now);

  // The one place a flow's phase changes, with what entering each phase does.
  void enter(const FlowKey& key, Flow& flow, Phase to, Instant now);
  // A round may begin with this packet: starts it, or puts the flow in line.
  void maybe_start_round(const FlowKey& key, Flow& flow, Instant now);
  void start_round(const FlowKey& key, Flow& flow, Instant now);
  // Lets waiting flows back, first come first served, while there is room.
  void admit_waiting(Instant now);

  void probe_dup(const FlowKey& key, Flow& flow, const wire::TcpPacket& packet,
                 const PacketMeta& meta, Instant now);
  std::optional<std::uint8_t> probe_mangle(const FlowKey& key, Flow& flow,
                                           const wire::TcpPacket& packet, const PacketMeta& meta,
                                           Instant now);
  // Hands out the round's new replies, and ends the round if it is over.
  void settle(const FlowKey& key, Flow& flow, Instant now);
  // The round's replies not yet handed out become HopEvents.
  void take_replies(Trace& trace);
  // A reply to the last round, after it ended: out on its own (counted in
  // `late_count`), and the flow's margin for silence grows.
  void late_reply(Flow& flow, std::uint64_t& late_count);
  // Ends the running round: its last replies and its result go out, and its
  // place is free.
  void end_round(Flow& flow, StopReason reason, Instant now);
  void close_flow(const FlowKey& key, Flow& flow, Instant now);
  // A SYN on the ports of a flow we knew: a new connection, traced afresh.
  void restart(const FlowKey& key, Instant now);

  void set_skip(const FlowKey& key, Flow& flow, Skip skip);
  // Between waves a round needs none of the flow's packets: past the queue
  // till the next wave is due (its answers come on their own).
  void skip_between_waves(const FlowKey& key, Flow& flow);
  // How a flow that waits for its next packet skips: `wave` when the rules
  // can hand over that one packet alone, else `none`.
  Skip next_packet_skip() const;
  // How a round in mangle mode has its flow's packets come: queued, where
  // the rules would copy them (its verdicts set their TTL).
  Skip mangle_skip() const;
  // The probes that a packet of the peer's SACK blocks (D-SACKs) name: of
  // the round running, or late, of the last one.
  void take_peer_sacks(Flow& flow, const wire::TcpPacket& packet, Instant at);
  // Notes a packet the flow sent (its data, its timestamp); true when its
  // data had been sent before.
  bool note_sent(Flow& flow, const wire::TcpPacket& packet, Duration now);
  // A watching flow retransmitted: its round is due (admitted, or in line).
  void trigger(const FlowKey& key, Flow& flow, Instant now);
  void arm(const FlowKey& key, Flow& flow, FlowTimer which, Duration at);
  // Arms `which` at `at` unless it is pending earlier already.
  void arm_by(const FlowKey& key, Flow& flow, FlowTimer which, Duration at);
  void on_flow_timer(const FlowKey& key, Flow& flow, FlowTimer which, Instant now);
  void on_idle_check(const FlowKey& key, Flow& flow, Instant now);

  EngineConfig config_;
  std::shared_ptr<const TraceParams> default_params_;
  FlowFilter filter_;
  std::unordered_map<FlowKey, Flow, FlowKeyHash> flows_;
  std::optional<PathMemory> memory_;  // --stop-set
  // Every pending flow timer; an entry whose flow no longer has that timer
  // at that time is stale and skipped.
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
  Admission admission_;
  ProbeBudget budget_;
  ProbeRandom random_;
  bool stopped_ = false;

  OutputQueue<Output> outputs_;
  std::vector<std::uint8_t> wanted_;  // scratch, kept to avoid allocation
  std::vector<ProbePacket> wave_;     // scratch: a dup wave, sent highest TTL first
  EngineCounters counters_;
};

}  // namespace nfqtrace::core
