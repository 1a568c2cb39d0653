// What a trace finds: replies, hops and the finished trace. Kept plain so
// every output format (JSON Lines, text, later scamper/Atlas) reads the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/time.hpp"
#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::core {

enum class ReplyKind : std::uint8_t {
  time_exceeded,  // a router on the way
  unreachable,    // ICMP destination unreachable
  destination,    // the peer itself acknowledged the probe
};

struct Reply {
  wire::Address addr;
  Duration rtt{0};           // of the very probe this reply answers
  Instant at;                // arrival
  ReplyKind kind = ReplyKind::time_exceeded;
  std::uint8_t icmp_code = 0;
  std::uint8_t reply_ttl = 0;   // TTL the reply arrived with (0 = unknown)
  std::uint8_t quoted_ttl = 0;  // TTL left in the quoted probe (ICMP only)
};

// The trace a hop was taken over from (not probed by the flow itself).
struct InferredFrom {
  FlowKey flow;
  std::uint32_t round = 0;
  bool operator==(const InferredFrom&) const = default;
};

struct Hop {
  std::uint8_t ttl = 0;
  std::uint8_t probes_sent = 0;
  std::vector<Reply> replies;  // empty: a silent TTL
  // Set when the flow did not probe this TTL: --stop-set took the hop from
  // a recent trace that met the same router further up.
  std::optional<InferredFrom> inferred_from;
};

enum class StopReason : std::uint8_t { reached, gaplimit, maxttl, closed, stopped };
std::string_view to_string(StopReason r);
std::string_view to_string(Mode m);
std::string_view to_string(ReplyKind k);

struct TraceResult {
  FlowKey flow;
  std::uint32_t round = 0;
  Mode mode = Mode::dup;
  Instant start, end;
  bool reached = false;
  StopReason reason = StopReason::stopped;
  std::vector<Hop> hops;  // TTL 1 upwards; when reached, the last is the peer
  std::uint32_t probes_sent = 0;
};

// A reply, reported the moment it is matched to its probe.
struct HopEvent {
  FlowKey flow;
  std::uint32_t round = 0;
  std::uint8_t ttl = 0;
  Reply reply;
};

}  // namespace nfqtrace::core
