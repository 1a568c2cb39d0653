// Where a tool's results go: the main format on stdout (or the live view),
// every --output FORMAT=FILE beside it, and whatever else watches them (the
// metrics). Each is a ResultConsumer; Results hands every result to all of
// them, in the order the engine decided them.
#pragma once

#include <memory>
#include <vector>

#include "nfqtrace/core/result.hpp"

namespace nfqtrace::cli {

// Which way a trace went, for nfqtrace-client's two directions; `none` for
// the other tools, whose formats say nothing of it.
enum class Direction { none, forward, reverse };

// One format, or one observer, of the results.
class ResultConsumer {
 public:
  virtual ~ResultConsumer() = default;
  virtual void hop(const core::HopEvent& /*hop*/, Direction /*direction*/) {}
  virtual void trace(const core::TraceResult& /*trace*/, Direction /*direction*/) {}
  virtual void path_change(const core::PathChange& /*change*/) {}
  // The run is over (last results given): a format that writes a whole
  // document (Graphviz) writes it now, a binary one its trailer.
  virtual void finish() {}
};

class Results final : public ResultConsumer {
 public:
  void add(std::unique_ptr<ResultConsumer> consumer) { consumers_.push_back(std::move(consumer)); }
  void hop(const core::HopEvent& hop, Direction direction) override {
    for (auto& c : consumers_) c->hop(hop, direction);
  }
  void trace(const core::TraceResult& trace, Direction direction) override {
    for (auto& c : consumers_) c->trace(trace, direction);
  }
  void path_change(const core::PathChange& change) override {
    for (auto& c : consumers_) c->path_change(change);
  }
  void finish() override {
    for (auto& c : consumers_) c->finish();
  }

 private:
  std::vector<std::unique_ptr<ResultConsumer>> consumers_;
};

}  // namespace nfqtrace::cli
