// What recent traces learned about the paths from this host, so that a new
// flow is not probed again where that is known (a Doubletree-style stop
// set). A flow to a destination a recent trace reached is probed backwards
// from just below that destination, and only until it meets a router at the
// same TTL that a recent trace met too: below it the path is taken to be
// that trace's. Per-flow load balancers can send two flows along different
// paths, so the hops taken over are marked with the trace they come from,
// never passed off as this flow's own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/result.hpp"
#include "nfqtrace/core/time.hpp"

namespace nfqtrace::core {

class PathMemory {
 public:
  // A trace that saw a router; `hops` is its whole path (shared).
  struct Known {
    std::shared_ptr<const std::vector<Hop>> hops;
    FlowKey flow;
    std::uint32_t round = 0;
    Duration learned{0};
  };

  // What is older than `lifetime` is forgotten; at most `max_entries` are kept.
  explicit PathMemory(Duration lifetime, std::size_t max_entries = 100'000);

  // A finished trace: what it saw itself, if it reached its destination.
  void learn(const TraceResult& trace, Duration now);
  // Where to start probing a new flow to `dst`: the TTL just below it, when
  // a recent trace reached it (and it is not the first hop).
  std::optional<std::uint8_t> start_ttl(const wire::Address& dst, Duration now) const;
  // A recent trace that met router `addr` at `ttl`.
  const Known* through(const wire::Address& addr, std::uint8_t ttl, Duration now) const;

  std::size_t size() const { return routers_.size() + destinations_.size(); }

 private:
  struct Distance {
    std::uint8_t ttl = 0;
    Duration learned{0};
  };
  bool fresh(Duration learned, Duration now) const { return now - learned < lifetime_; }
  void sweep(Duration now);

  Duration lifetime_;
  std::size_t max_entries_;
  Duration next_sweep_{0};
  std::map<std::pair<wire::Address, std::uint8_t>, Known> routers_;
  std::map<wire::Address, Distance> destinations_;
};

}  // namespace nfqtrace::core
