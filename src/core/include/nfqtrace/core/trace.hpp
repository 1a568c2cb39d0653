// One round of tracing one flow: which TTLs still want probes, the probes in
// flight, the replies matched to them, and when the round is over.
//
// A probe is identified by what every ICMP quote carries: its sequence
// number and IP payload length (plus the IP ID for IPv4). Replies are
// attributed to the probe they quote, never to "the TTL being probed now".
//
// Dup mode probes in two passes: one probe for every TTL at once, then the
// remaining repeats for TTLs up to the destination (or up to the last
// answering TTL plus the gap limit) as soon as the first pass has told where
// the destination is, or has settled. Mangle mode costs the connection a
// segment per expiring probe, so it probes one TTL at a time, upwards, and
// never beyond the gap limit ahead of the last answer.
//
// With a stop set (PathMemory), a dup-mode round whose destination a recent
// trace reached starts just below it and walks backwards one TTL at a time
// until a router answers that a recent trace met at the same TTL; the hops
// below are that trace's, marked as such.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/path_memory.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::core {

struct ProbeIdentity {
  std::uint32_t seq = 0;
  std::uint32_t ip_payload_len = 0;  // TCP header + payload
  std::uint16_t ip_id = 0;           // IPv4 only; 0 and unchecked for IPv6
};

struct Probe {
  ProbeIdentity id;
  std::uint32_t payload_len = 0;
  std::uint8_t ttl = 0;
  Duration sent{0};
  Duration expires{0};
  bool answered = false;
  bool expired = false;
  bool retransmitted = false;  // mangle: the sender resent its bytes
};

enum class IcmpMatch : std::uint8_t { matched, no_probe, repeated };

class Trace {
 public:
  // `memory` (may be null) and `start_ttl`: probe backwards from there,
  // against the stop set (dup mode).
  Trace(const TraceParams& params, const FlowKey& flow, std::uint32_t round, Instant start,
        const PathMemory* memory = nullptr, std::optional<std::uint8_t> start_ttl = {});

  // TTLs that want a probe now, lowest first, each as often as it wants one.
  // Mangle mode wants at most one.
  void wanted_ttls(std::vector<std::uint8_t>& out) const;
  // True when an outstanding or answered probe of this round uses `seq`;
  // probes use distinct sequence numbers so replies and SACK blocks name one.
  bool seq_in_use(std::uint32_t seq) const;
  // Mangle mode cannot choose the sequence number: the whole identity must
  // be new (IPv4 pure ACKs differ only in their IP ID).
  bool identity_in_use(const ProbeIdentity& id) const;
  void add_probe(const Probe& probe);

  // An ICMP error quoting `id`: the reply, if it matches a probe.
  IcmpMatch on_icmp(const ProbeIdentity& id, Reply reply);
  // The peer's SACK block [left, right): evidence that a probe reached it.
  bool on_peer_sack(std::uint32_t left, std::uint32_t right, const wire::Address& peer,
                    Instant at, std::uint8_t reply_ttl);
  // The peer's cumulative ACK: evidence for mangled originals it covers.
  bool on_peer_ack(std::uint32_t ack, const wire::Address& peer, Instant at,
                   std::uint8_t reply_ttl);
  // The sender sent bytes [seq, end) again (mangle: a lost original).
  void on_retransmission(std::uint32_t seq, std::uint32_t end);

  // Probes whose reply is overdue at `now` count as unanswered.
  void expire(Duration now);
  void close() { closing_ = true; }  // the flow ended: no more probes

  // The reason the round is over, if it is.
  std::optional<StopReason> finished() const;
  TraceResult result(StopReason reason, Instant end) const;

  // When the earliest unanswered probe is overdue, if any is out.
  std::optional<Duration> next_expiry() const;
  // Replies matched since the caller last took them, for streaming.
  std::vector<HopEvent>& new_replies() { return new_replies_; }

 private:
  std::uint8_t horizon() const;  // highest TTL still worth probing
  bool all_settled(std::uint8_t up_to_ttl) const;
  bool all_settled_at(std::uint8_t ttl) const;
  bool first_pass_settled() const;
  std::uint8_t first_pass_limit() const;  // dup: highest TTL of the first pass now
  void record(std::uint8_t ttl, const Reply& reply);
  std::uint8_t last_router_ttl() const;  // highest TTL answered by a router
  // Stop set: steps the backward walk on as far as the replies allow.
  void walk_back(Duration now);
  void take_over_below(const PathMemory::Known& known);

  const TraceParams params_;  // a copy: the flow may be given new parameters
  FlowKey flow_;
  std::uint32_t round_;
  Instant start_;
  std::vector<Probe> probes_;
  std::vector<Hop> hops_;  // index ttl - 1
  std::uint8_t destination_ttl_ = 0;  // 0: not reached (yet)
  // Stop set: the lowest TTL probed (1 without one), whether the backward
  // walk is over, the hops below floor_ taken from a recent trace, and the
  // first pass's window when the destination's distance is known.
  const PathMemory* memory_ = nullptr;
  std::uint8_t floor_ = 1;
  bool walk_done_ = true;
  std::vector<Hop> taken_over_;
  std::uint8_t known_window_ = 0;
  bool closing_ = false;
  std::vector<HopEvent> new_replies_;
};

}  // namespace nfqtrace::core
