// What a flow's rounds tell together: whether the path changed since the
// last round, and from which TTL probes are lost.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <vector>

#include "nfqtrace/core/result.hpp"

namespace nfqtrace::core {

class PathHistory {
 public:
  // A round ended: the change from the last complete round, if its path
  // differs (a TTL that went silent or came back counts). Rounds that were
  // cut short (closed, stopped) are not compared; hops taken over from
  // another flow's trace are never this flow's to compare.
  std::optional<PathChange> add(const TraceResult& round);

  // The lowest TTL from which every later one, the destination included,
  // lost probes in `round`. A TTL that never answered in any round (a silent
  // router) is left out; a router that loses probes while the next answers
  // all of its is limiting its ICMP, and ends the run.
  std::optional<std::uint8_t> loss_from_ttl(const TraceResult& round) const;

 private:
  std::uint32_t last_round_ = 0;
  std::vector<std::vector<wire::Address>> last_path_;  // per TTL, sorted; empty: silent
  std::vector<bool> last_inferred_;
  std::bitset<256> ever_answered_;  // by TTL
};

}  // namespace nfqtrace::core
