#include "nfqtrace/core/path_history.hpp"

#include <algorithm>

namespace nfqtrace::core {
namespace {

std::vector<wire::Address> addresses(const Hop& hop) {
  std::vector<wire::Address> out;
  for (const Reply& r : hop.replies) out.push_back(r.addr);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool complete(StopReason reason) {
  return reason == StopReason::reached || reason == StopReason::gaplimit ||
         reason == StopReason::maxttl;
}

}  // namespace

std::optional<PathChange> PathHistory::add(const TraceResult& round) {
  for (const Hop& hop : round.hops)
    if (!hop.inferred_from && !hop.replies.empty()) ever_answered_.set(hop.ttl);
  if (!complete(round.reason)) return std::nullopt;

  std::vector<std::vector<wire::Address>> path;
  std::vector<bool> inferred;
  for (const Hop& hop : round.hops) {
    path.push_back(addresses(hop));
    inferred.push_back(hop.inferred_from.has_value());
  }
  std::optional<PathChange> change;
  if (last_round_ != 0) {
    PathChange c{round.flow, round.round, last_round_, {}};
    const std::size_t ttls = std::max(path.size(), last_path_.size());
    for (std::size_t i = 0; i < ttls; ++i) {
      const bool was_inferred = i < last_inferred_.size() && last_inferred_[i];
      const bool is_inferred = i < inferred.size() && inferred[i];
      if (was_inferred || is_inferred) continue;
      const auto from = i < last_path_.size() ? last_path_[i] : std::vector<wire::Address>{};
      const auto to = i < path.size() ? path[i] : std::vector<wire::Address>{};
      if (from != to) c.changes.push_back({static_cast<std::uint8_t>(i + 1), from, to});
    }
    if (!c.changes.empty()) change = std::move(c);
  }
  last_round_ = round.round;
  last_path_ = std::move(path);
  last_inferred_ = std::move(inferred);
  return change;
}

std::optional<std::uint8_t> PathHistory::loss_from_ttl(const TraceResult& round) const {
  if (!round.reached || round.hops.empty()) return std::nullopt;
  const auto lost = [](const Hop& h) { return h.probes_sent > h.replies.size(); };
  if (!lost(round.hops.back())) return std::nullopt;
  std::uint8_t from = round.hops.back().ttl;
  for (std::size_t i = round.hops.size() - 1; i-- > 0;) {
    const Hop& hop = round.hops[i];
    if (hop.inferred_from) break;
    if (!ever_answered_.test(hop.ttl)) continue;  // a silent router tells nothing
    if (!lost(hop)) break;
    from = hop.ttl;
  }
  return from;
}

}  // namespace nfqtrace::core
