#include "nfqtrace/core/result.hpp"

#include "nfqtrace/core/flow_key.hpp"

namespace nfqtrace::core {

std::string_view to_string(StopReason r) {
  switch (r) {
    case StopReason::reached: return "reached";
    case StopReason::gaplimit: return "gaplimit";
    case StopReason::maxttl: return "maxttl";
    case StopReason::closed: return "closed";
    case StopReason::stopped: return "stopped";
  }
  return "unknown";
}

std::string_view to_string(Silence s) {
  switch (s) {
    case Silence::none: return "none";
    case Silence::inferred: return "inferred";
    case Silence::timeout: return "timeout";
  }
  return "unknown";
}

std::string_view to_string(Mode m) { return m == Mode::dup ? "dup" : "mangle"; }

std::string_view to_string(ReplyKind k) {
  switch (k) {
    case ReplyKind::time_exceeded: return "time-exceeded";
    case ReplyKind::unreachable: return "unreachable";
    case ReplyKind::destination: return "destination";
  }
  return "unknown";
}

std::optional<std::uint8_t> hops_travelled(std::uint8_t received_ttl) {
  if (received_ttl == 0) return std::nullopt;
  for (const unsigned initial : {64u, 128u, 255u}) {
    if (received_ttl <= initial) return static_cast<std::uint8_t>(initial - received_ttl + 1);
  }
  return std::nullopt;
}

std::size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  // FNV-1a over the bytes that identify the flow.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 1099511628211ull; };
  for (std::size_t i = 0; i < k.src.size(); ++i) mix(k.src.bytes[i]);
  for (std::size_t i = 0; i < k.dst.size(); ++i) mix(k.dst.bytes[i]);
  mix(static_cast<std::uint8_t>(k.sport >> 8));
  mix(static_cast<std::uint8_t>(k.sport));
  mix(static_cast<std::uint8_t>(k.dport >> 8));
  mix(static_cast<std::uint8_t>(k.dport));
  return static_cast<std::size_t>(h);
}

}  // namespace nfqtrace::core
