// A TCP connection in the direction nfqtrace traces: from us (src) to the
// peer (dst).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::core {

struct FlowKey {
  wire::Address src, dst;
  std::uint16_t sport = 0, dport = 0;

  wire::Family family() const { return src.family; }
  // The same connection seen from the peer's side.
  FlowKey reversed() const { return FlowKey{dst, src, dport, sport}; }
  auto operator<=>(const FlowKey&) const = default;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& k) const noexcept;
};

}  // namespace nfqtrace::core
