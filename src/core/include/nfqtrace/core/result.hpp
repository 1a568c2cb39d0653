// What a trace finds: replies, hops and the finished trace. Kept plain so
// every output format (JSON Lines, text, later scamper/Atlas) reads the same.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/quote_diff.hpp"
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
  FieldSet changes;             // what the path changed in the probe (ICMP only)
  // It came after its TTL had been taken for silent (later TTLs had
  // answered and the margin had passed), within --timeout all the same.
  bool late = false;
  std::vector<wire::MplsEntry> mpls;  // the label stack the router reported, if any
};

// Hops a packet that arrived with `received_ttl` travelled, counted as a
// traceroute counts them (the sender directly attached: 1): it left with
// the smallest of the usual initial TTLs (64, 128, 255) not below what is
// left. nullopt for 0 (unknown).
std::optional<std::uint8_t> hops_travelled(std::uint8_t received_ttl);

// The trace a hop was taken over from (not probed by the flow itself).
struct InferredFrom {
  FlowKey flow;
  std::uint32_t round = 0;
  bool operator==(const InferredFrom&) const = default;
};

// Why a TTL with no reply is silent: its probes waited --timeout, or later
// TTLs answered and the replies' own round trips said it would have too.
enum class Silence : std::uint8_t { none, inferred, timeout };
std::string_view to_string(Silence s);

struct Hop {
  std::uint8_t ttl = 0;
  std::uint8_t probes_sent = 0;
  std::vector<Reply> replies;  // empty: a silent TTL
  // Set when the flow did not probe this TTL: --stop-set took the hop from
  // a recent trace that met the same router further up.
  std::optional<InferredFrom> inferred_from;
  Silence silent = Silence::none;  // why, when `replies` is empty
};

// A field the path changed in the probes, the first time (the lowest TTL)
// a quote showed it: the change was made before the router at that TTL.
struct Middlebox {
  Field field = Field::ip_dscp;
  std::uint8_t first_seen_ttl = 0;
  FieldValue sent, seen;
};

// A device that shifts the connection's sequence numbers by a constant: the
// quotes of routers beyond it show seq + offset (mod 2^32).
struct Rewrite {
  Field field = Field::tcp_seq;
  std::uint32_t offset = 0;
  std::uint8_t first_seen_ttl = 0;
};

// Signs of address translation: in the quotes (a quote with translated
// addresses or ports, or a checksum that changed although they are as sent;
// a time-exceeded from the destination's own address), or seen by the two
// ends of a cooperating connection (the client's own address and port, and
// what the server sees).
struct Nat {
  std::optional<std::uint8_t> first_seen_ttl;
  std::string evidence;
  std::string client_sees, server_sees;  // "A:P", "[A]:P"; empty: unknown
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
  std::vector<Middlebox> middleboxes;  // each changed field once, lowest TTL first
  std::vector<Rewrite> rewrites;
  std::optional<Nat> nat;
  // The lowest TTL from which every later one, the destination included,
  // lost probes (a router that answers fewer probes while later ones answer
  // all of theirs limits its ICMP: that is not loss).
  std::optional<std::uint8_t> loss_from_ttl;
  // Hops of the way back, from the TTL the peer's packets arrive with.
  std::optional<std::uint8_t> return_hops;
};

// The path of a flow changed between two of its rounds.
struct PathChange {
  FlowKey flow;
  std::uint32_t round = 0, previous_round = 0;
  struct AtTtl {
    std::uint8_t ttl = 0;
    std::vector<wire::Address> from, to;  // the addresses that answered there
  };
  std::vector<AtTtl> changes;
};

// A reply, reported the moment it is matched to its probe.
struct HopEvent {
  FlowKey flow;
  std::uint32_t round = 0;
  std::uint8_t ttl = 0;
  Reply reply;
};

}  // namespace nfqtrace::core
