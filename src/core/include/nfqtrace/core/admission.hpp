// How many traces run at once, and whose turn is next. A flow that wants a
// trace when there is no room waits, first come first served; when a place
// frees, the first flow still waiting is admitted and its place kept for it
// until its next packet starts the trace.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"

namespace nfqtrace::core {

class Admission {
 public:
  explicit Admission(std::size_t limit) : limit_(limit) {}

  // --max-flows, and no more than the --pps budget can serve: a trace's
  // first wave is about a window of probes, and a flow admitted beyond what
  // the budget sends within a timeout would only wait in the queue.
  static std::size_t limit_for(const EngineConfig& config);

  bool has_room() const { return running_ + kept_ < limit_; }
  // Keeps a free place for a flow whose trace starts with a later packet;
  // false when there is none.
  bool keep();
  // A trace starts: in the place kept for it, or in a free one.
  void start(bool in_kept_place);
  void end();          // a running trace ended
  void give_up_kept(); // an admitted flow went before its trace started

  // No room: `flow` waits its turn.
  void wait(const FlowKey& flow) { waiting_.push_back(flow); }
  // While there is room, the next flow for which `still_waiting(flow)`
  // holds (a flow that went meanwhile gives up its turn), with a place kept
  // for it.
  template <typename StillWaiting>
  std::optional<FlowKey> admit_next(StillWaiting&& still_waiting) {
    while (has_room() && !waiting_.empty()) {
      const FlowKey flow = waiting_.front();
      waiting_.pop_front();
      if (!still_waiting(flow)) continue;
      ++kept_;
      return flow;
    }
    return std::nullopt;
  }

  // Every trace ended at once (the engine stopped).
  void clear();

  std::size_t limit() const { return limit_; }
  std::size_t running() const { return running_; }
  std::size_t kept() const { return kept_; }
  std::size_t waiting() const { return waiting_.size(); }  // gone flows included

 private:
  std::size_t limit_;
  std::size_t running_ = 0;
  std::size_t kept_ = 0;           // places kept for admitted flows
  std::deque<FlowKey> waiting_;    // in order of arrival
};

}  // namespace nfqtrace::core
