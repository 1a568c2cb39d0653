// The running tracer: the engine wired to the queue, the NFLOG copies of the
// peer's packets, the raw sockets and the clock, inside an event loop.
//
// Order of work on each batch from the queue: verdicts first (the connection
// never waits for us), then what the engine decided, in its order: probes
// (so a duplicate leaves after its original), results, skip marks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/engine.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/nfqueue.hpp"
#include "nfqtrace/sys/rules.hpp"

namespace nfqtrace::runtime {

struct TracerOptions {
  core::EngineConfig engine;
  core::FlowFilter filter;
  sys::QueueOptions queue;
  std::optional<sys::RuleSpec> rules;  // nullopt: --no-rules, the user's rule feeds the queue
  std::uint32_t probe_mark = sys::default_mark;
  // Two more conntrack mark bits, outside probe_mark: of flows that wait for
  // a retransmission (--trigger retransmit), and of flows whose round waits
  // for answers past the queue. 0: not used.
  std::uint32_t watch_mark = 0;
  std::uint32_t round_mark = 0;
  std::uint16_t nflog_group = 0;
  std::optional<std::uint64_t> stop_after_traces;  // --count
  // Flows may ask for mangle mode whatever engine.trace.mode says (the
  // clients of a cooperating server): a flow in mangle mode has its packets
  // queued by its conntrack mark, the others are copied to the log (without
  // conntrack marks, all are queued). Otherwise, in dup mode, our rules copy
  // them all.
  bool flows_may_mangle = false;
  // Our rules are removed by a privileged keeper process when we end, however
  // we end; needed to drop privileges (sys::drop_privileges) after set-up.
  bool rule_keeper = true;
};

// Where results go as they happen.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void on_hop(const core::HopEvent& hop) = 0;
  virtual void on_trace(const core::TraceResult& trace) = 0;
  // A flow's path differs from its last round's (only with --repeat).
  virtual void on_path_change(const core::PathChange& change) = 0;
};

// What went wrong on the way, for the summary line and for tests.
struct RuntimeCounters {
  std::uint64_t queue_packets = 0;        // every packet the queue handed us
  std::uint64_t copied_packets = 0;       // copies of outgoing packets (dup mode)
  std::uint64_t log_copies_lost = 0;      // copies (ours or the peer's) the log dropped
  // Packets we could not read, by why (each one is let through untouched).
  wire::ParseErrorCounts queue_unreadable;  // queued, yet not IP/TCP
  wire::ParseErrorCounts copy_unreadable;   // copies of outgoing packets, not IP/TCP
  wire::ParseErrorCounts peer_unreadable;
  wire::ParseErrorCounts icmp_unreadable;   // not an error quoting TCP
  std::uint64_t probe_send_errors = 0;
  std::uint64_t verdict_errors = 0;
  std::uint64_t stale_marks_cleared = 0;  // skip marks an earlier run left
  std::uint64_t icmp_withheld = 0;  // probe replies dropped before TCP saw them
};

class Tracer {
 public:
  // Opens the queue, the log, the sockets, then installs the rules.
  static sys::Result<std::unique_ptr<Tracer>> create(const TracerOptions& options,
                                                     ResultSink& sink);
  ~Tracer();  // removes the rules if still there

  // Registers with `loop`; the tracer owns the loop's deadline timer.
  sys::Status attach(sys::EventLoop& loop);
  // Traces `flow` with its own parameters (with FlowFilter::requested_only,
  // only such flows are traced), and forgets it when its connection is gone.
  void request_trace(const core::FlowKey& flow, const core::TraceParams& params);
  void forget(const core::FlowKey& flow);
  // Ends all running traces (reason `stopped`), reports them, removes the rules.
  sys::Status shutdown();
  // True once --count traces have ended.
  bool done() const;
  // An error that made the tracer stop working (a socket failed), if any.
  const std::optional<sys::Error>& fatal() const;

  const core::EngineCounters& engine_counters() const;
  const RuntimeCounters& counters() const;
  std::uint64_t traces_reported() const;
  core::Engine::FlowCounts flow_counts() const;  // for the metrics

  struct Impl;

 private:
  explicit Tracer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nfqtrace::runtime
