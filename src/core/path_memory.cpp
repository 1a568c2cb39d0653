#include "nfqtrace/core/path_memory.hpp"

#include <iterator>

namespace nfqtrace::core {

PathMemory::PathMemory(Duration lifetime, std::size_t max_entries)
    : lifetime_(lifetime), max_entries_(max_entries) {}

void PathMemory::learn(const TraceResult& trace, Duration now) {
  if (!trace.reached || trace.hops.empty()) return;
  if (now >= next_sweep_ || size() >= max_entries_) sweep(now);
  if (size() >= max_entries_) return;  // full of fresh paths: this one goes unremembered
  auto hops = std::make_shared<const std::vector<Hop>>(trace.hops);
  for (const Hop& hop : *hops) {
    // Hops this trace took over from another are that other's to vouch for.
    if (hop.inferred_from) continue;
    for (const Reply& r : hop.replies) {
      if (r.kind != ReplyKind::time_exceeded) continue;
      routers_[{r.addr, hop.ttl}] = Known{hops, trace.flow, trace.round, now};
    }
  }
  destinations_[trace.flow.dst] = Distance{trace.hops.back().ttl, now};
}

std::optional<std::uint8_t> PathMemory::start_ttl(const wire::Address& dst, Duration now) const {
  auto it = destinations_.find(dst);
  if (it == destinations_.end() || !fresh(it->second.learned, now) || it->second.ttl < 2)
    return std::nullopt;
  return static_cast<std::uint8_t>(it->second.ttl - 1);
}

const PathMemory::Known* PathMemory::through(const wire::Address& addr, std::uint8_t ttl,
                                             Duration now) const {
  auto it = routers_.find({addr, ttl});
  if (it == routers_.end() || !fresh(it->second.learned, now)) return nullptr;
  return &it->second;
}

void PathMemory::sweep(Duration now) {
  std::erase_if(routers_, [&](const auto& entry) { return !fresh(entry.second.learned, now); });
  std::erase_if(destinations_, [&](const auto& entry) { return !fresh(entry.second.learned, now); });
  // Often enough that stale paths do not pile up, rarely enough to be cheap.
  next_sweep_ = now + lifetime_ / 4;
}

}  // namespace nfqtrace::core
