// Conntrack marks through ctnetlink: a flow whose trace is over gets a mark
// bit that our rules match first, so its packets skip the queue (and user
// space) until the bit is cleared again for its next round.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"

namespace nfqtrace::sys {

class ConntrackMarker {
 public:
  static Result<ConntrackMarker> open();

  // Sets (or clears) `bits` in the mark of the connection `flow` belongs to
  // (in either direction), leaving its other bits alone. An error with code
  // ENOENT means the connection is gone.
  Status set_bits(const core::FlowKey& flow, std::uint32_t bits, bool on);
  // Sets the bits of `mask` in that mark to those of `value` (the others
  // stay as they are), in one request.
  Status set_mark(const core::FlowKey& flow, std::uint32_t value, std::uint32_t mask);
  // Clears `bits` and `also` in every TCP connection that has all of `bits`;
  // how many it cleared. For the marks a run leaves behind (killed, or ended
  // while flows were skipping): a later run would never see those flows.
  Result<std::size_t> clear_everywhere(std::uint32_t bits, std::uint32_t also = 0);

 private:
  explicit ConntrackMarker(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<std::vector<core::FlowKey>> marked_connections(std::uint32_t bits);
  UniqueFd fd_;
  std::uint32_t sequence_ = 0;
};

}  // namespace nfqtrace::sys
