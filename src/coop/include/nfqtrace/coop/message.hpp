// The messages of the cooperative protocol (docs/protocol.md) and their
// encoding: one JSON object per line, told apart by its "type".
//
// "hop" and "trace" are exactly the objects nfqtrace prints
// (output::hop_json, output::trace_json). decode() never throws: whatever a
// peer sends becomes a Message or a DecodeError with a one-line reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "nfqtrace/base/expected.hpp"
#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::coop {

inline constexpr int protocol_version = 1;

// Trace parameters a client asks for (the server fills what is absent from
// its defaults and clamps the rest, see limits.hpp). The integers are wide so
// that an absurd request is clamped rather than misread.
// JSON names as nfqtrace's options: mode, packetfreq, maxttl, ttlrepeat,
// timeout (seconds), gaplimit.
struct TraceRequest {
  std::optional<core::Mode> mode;
  std::optional<std::uint64_t> packet_freq;
  std::optional<std::uint64_t> max_ttl;
  std::optional<std::uint64_t> ttl_repeat;
  std::optional<core::Duration> timeout;
  std::optional<std::uint64_t> gap_limit;

  bool operator==(const TraceRequest&) const = default;
};

// An address and port, as one end of the connection sees it.
struct Endpoint {
  wire::Address addr;
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

struct Hello {  // client -> server, the first line
  int version = protocol_version;
  TraceRequest params;
  // The client's own end of the connection (its socket's local address and
  // port): where it differs from what the server sees, a NAT is between them.
  std::optional<Endpoint> client;
};
struct ServerHello {  // server -> client, the answer to Hello
  int version = protocol_version;
  TraceRequest params;   // the effective ones, every field set
  core::FlowKey flow;   // the server's outgoing flow, the one it traces
};
struct Filler {  // either way: traffic for the traces to work with
  std::uint64_t n = 0;  // the sender's count of filler lines, from 1
  std::string pad;
};
struct HopMessage {  // server -> client: a reply of the reverse trace
  core::HopEvent hop;
};
struct TraceMessage {  // server -> client: the reverse trace, ended
  core::TraceResult trace;
};
struct Done {};  // server -> client: nothing more will come
struct ErrorMessage {  // either way; the sender closes after it
  std::string message;
};
struct Unknown {  // a type this version does not know: to be ignored
  std::string type;
};

using Message = std::variant<Hello, ServerHello, Filler, HopMessage, TraceMessage, Done,
                             ErrorMessage, Unknown>;

struct DecodeError {
  enum class Kind : std::uint8_t { invalid_json, not_an_object, missing_type, bad_field };
  Kind kind;
  std::string reason;  // one line, e.g. "bad field params.maxttl: must be ..."
};

using Decoded = Expected<Message, DecodeError>;

// Lines nested deeper than this are refused before they are parsed.
inline constexpr std::size_t max_json_depth = 32;
// Bytes of padding in a filler line.
inline constexpr std::size_t filler_pad_size = 64;

// One line, ending in '\n'. Never throws (invalid UTF-8 in a string is
// replaced by U+FFFD).
std::string encode(const Message& message);

// One line, without its '\n'. A "hello" with a "flow" is a ServerHello,
// without one a Hello.
Decoded decode(std::string_view line);

// The "type" the message has on the wire ("hello", "filler", ...).
std::string_view type_of(const Message& message);

Filler make_filler(std::uint64_t n);

// Text from the peer made safe to show in one line of a terminal or log:
// control characters become '?', and it is cut (at a character boundary)
// to at most `max_bytes`, marked with "...".
std::string printable(std::string_view text, std::size_t max_bytes = 200);

}  // namespace nfqtrace::coop
