// What a cooperating server lets one client make it do. A client chooses the
// parameters of the trace the server runs towards it; these bounds keep
// that (and the connection around it) small whatever the client asks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/core/config.hpp"

namespace nfqtrace::coop {

using namespace std::chrono_literals;

struct ServerLimits {
  std::uint8_t max_ttl = 32;
  std::uint8_t max_ttl_repeat = 5;
  core::Duration min_timeout = 50ms, max_timeout = 5s;
  std::uint8_t max_gap_limit = 10;
  std::uint32_t min_packet_freq = 1, max_packet_freq = 1000;
  bool allow_mangle = true;
  core::Duration filler_interval = 50ms;     // the server's filler while it traces
  core::Duration client_time_limit = 60s;    // a whole connection, hello to close
  core::Duration idle_timeout = 10s;         // for the hello, then between client bytes
  std::size_t max_line = 16384;              // bytes per line from the client
  std::size_t max_outgoing = std::size_t{1} << 20;  // unread bytes: "client not reading"
};

// The trace the server runs for a client that asked for `requested`: absent
// fields come from `server_defaults`, every field is clamped into the limits
// (at least 1 for the counts), mangle becomes dup unless allowed, and there
// are no repeat rounds: one trace per connection.
core::TraceParams clamp(const TraceRequest& requested, const core::TraceParams& server_defaults,
                        const ServerLimits& limits);

// Every field of `config` that a client can ask for, set.
TraceRequest request_of(const core::TraceParams& config);

}  // namespace nfqtrace::coop
