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
//
// A device that shifts the connection's sequence numbers (a firewall
// randomising them) makes the quotes of routers beyond it name seq + offset.
// Such a quote still carries the probe's IP length (each probe of a round
// has its own, from a secret order), on IPv4 its IP ID, and as far as the
// router quotes, its payload: it is held as naming the probes it could,
// each under its own offset, until replies naming two different probes
// agree on one offset. Then they all match, and so do later quotes under
// that offset. A forger would have to guess random IP IDs or the
// connection's own bytes: one forged ICMP never makes a hop.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/path_memory.hpp"
#include "nfqtrace/core/quote_diff.hpp"
#include "nfqtrace/core/result.hpp"
#include "nfqtrace/wire/icmp_error.hpp"

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
  Duration ttl_first_sent{0};  // when its TTL's first probe left (add_probe sets it)
  Duration expires{0};
  bool answered = false;
  bool expired = false;
  // Taken for silent before its timeout: later TTLs answered, and the
  // margin their round trips give passed (its reply may still come, late).
  bool inferred = false;
  bool retransmitted = false;  // mangle: the sender resent its bytes
  SentHeader header;           // as it left, for what the quotes show
};

// Dup probes carry 1 to this many bytes, each length once per this many
// probes, in an order secret to the round.
inline constexpr std::size_t probe_length_count = 16;

// What a flow brings to a round, from the engine and from its earlier rounds.
struct RoundStart {
  // Stop set (dup mode): probe backwards from start_ttl against memory.
  const PathMemory* memory = nullptr;
  std::optional<std::uint8_t> start_ttl;
  std::optional<std::uint32_t> seq_offset;  // a sequence shift confirmed before
  std::uint8_t known_distance = 0;          // where an earlier round found the destination
  Duration silence_margin{0};  // at least this long before a TTL is taken for silent
  // The payload lengths of dup probes in the order they are sent: a
  // permutation of 1..probe_length_count.
  std::array<std::uint8_t, probe_length_count> probe_lengths{};
};

enum class IcmpMatch : std::uint8_t {
  matched,
  pending,   // it names probes under a sequence shift not yet confirmed
  no_probe,
  repeated,
};

class Trace {
 public:
  Trace(const TraceParams& params, const FlowKey& flow, std::uint32_t round, Instant start,
        const RoundStart& from = {});

  // TTLs that want a probe now, lowest first, each as often as it wants one.
  // Mangle mode wants at most one.
  void wanted_ttls(std::vector<std::uint8_t>& out) const;
  // The payload length of the dup probe `ahead` after the next one.
  std::uint32_t next_probe_length(std::size_t ahead = 0) const;
  // True when bytes [seq, seq + len) overlap or touch an outstanding or
  // answered probe of this round: probes are apart, so that replies and
  // SACK blocks name one, and a receiver merges none.
  bool range_in_use(std::uint32_t seq, std::uint32_t len) const;
  // The end of the last probe of this round that lies in [from, to), if any.
  std::optional<std::uint32_t> last_probe_end(std::uint32_t from, std::uint32_t to) const;
  // Mangle mode cannot choose the sequence number: the whole identity must
  // be new (IPv4 pure ACKs differ only in their IP ID).
  bool identity_in_use(const ProbeIdentity& id) const;
  void add_probe(const Probe& probe);
  // The destination's TTL, this round's or an earlier one's (0: unknown).
  // Below it a probe cannot reach the peer.
  std::uint8_t known_distance() const;

  // An ICMP error quoting the flow: the reply, if it answers a probe.
  IcmpMatch on_icmp(const wire::QuotedTcp& quote, Reply reply);
  // The confirmed sequence shift, if any.
  const std::optional<std::uint32_t>& seq_offset() const { return seq_offset_; }
  // Replies still held for an unconfirmed shift.
  std::size_t held_replies() const { return held_.size(); }
  // Replies held earlier and matched since the last call, when a shift was
  // confirmed.
  std::size_t take_confirmed_earlier() { return std::exchange(confirmed_earlier_, 0); }
  // The peer's SACK block [left, right): evidence that a probe reached it.
  // Once the round is over, only for a probe taken for silent: a late reply.
  bool on_peer_sack(std::uint32_t left, std::uint32_t right, const wire::Address& peer,
                    Instant at, std::uint8_t reply_ttl);
  // The peer's cumulative ACK: evidence for mangled originals it covers.
  bool on_peer_ack(std::uint32_t ack, const wire::Address& peer, Instant at,
                   std::uint8_t reply_ttl);
  // The sender sent bytes [seq, end) again (mangle: a lost original).
  void on_retransmission(std::uint32_t seq, std::uint32_t end);

  // Probes whose reply is overdue at `now` count as unanswered: at
  // --timeout, or sooner once later TTLs answered and the margin passed.
  void expire(Duration now);
  void close() { closing_ = true; }  // the flow ended: no more probes
  // The peer reset the connection: its socket is gone, and probes reaching
  // it from now on get a RST where a D-SACK would have named them. A TTL
  // below the destination left without an answer is then no evidence of a
  // silent router: the round ends `closed`, not `reached`.
  void peer_gone() { peer_gone_ = true; }

  // The reason the round is over, if it is.
  std::optional<StopReason> finished() const;
  TraceResult result(StopReason reason, Instant end) const;

  // When the earliest unanswered probe is overdue, if any is out.
  std::optional<Duration> next_expiry() const;
  // When its last probe's --timeout is over: till then a late reply counts.
  std::optional<Duration> last_expiry() const;
  // Replies matched since the caller last took them, for streaming. The
  // destination's wait till no lower TTL can reach it any more (all their
  // probes out and answered or timed out) or the round ends: a lower one
  // that does (its first probe lost on the way) ends the trace there,
  // without the higher one.
  std::vector<HopEvent>& new_replies();
  // The round is over: the destination's replies at its final TTL join the
  // new replies.
  void release_destination_replies();
  // The round is over: only its probes taken for silent may still be
  // answered (late, within their --timeout), not those past it.
  void end() { ended_ = true; }

 private:
  std::uint8_t horizon() const;  // highest TTL still worth probing
  bool all_settled(std::uint8_t up_to_ttl) const;
  bool all_settled_at(std::uint8_t ttl) const;
  // Every probe below `ttl` is out and answered or past its --timeout.
  bool below_done(std::uint8_t ttl) const;
  bool first_pass_settled() const;
  std::uint8_t first_pass_limit() const;  // dup: highest TTL of the first pass now
  // Probes `ttl` wants in all: --ttlrepeat, and in dup mode a batch more
  // (up to two) for the TTL right below the destination and the
  // destination's while that TTL's silence is in doubt.
  unsigned wanted_at(std::uint8_t ttl) const;
  // Whether TTL `gap`, right below the destination, unanswered, may yet be
  // the destination: had it been, its probes would have gone unanswered
  // with a chance above doubt_level, judged by how many of theirs the
  // destination's TTLs got answered (a busy peer names few duplicates).
  bool silence_in_doubt(std::uint8_t gap) const;
  // `probe` answered with `reply`: a hop reply of its TTL (after the round,
  // a late one, streamed at once).
  void record(const Probe& probe, const Reply& reply);
  std::uint8_t last_router_ttl() const;  // highest TTL answered by a router
  void note_answered(const Probe& probe);  // for answered_above_
  // When `probe`, unanswered, is taken for silent before its --timeout, if
  // it is: once the margin has passed after a higher TTL answered a probe
  // sent with it or after it, or in dup mode at or beyond the destination's
  // TTL; a quarter of --timeout after it left when only an earlier wave's
  // higher TTLs answered.
  std::optional<Duration> silent_at(const Probe& probe) const;
  // The margin: three round trips of the slowest reply after its TTL's
  // first probe left, and two after it left itself (a repeat of a TTL
  // already silent once need not wait the three again: a trace whose second
  // pass leaves a round trip after the first ends 3 round trips after its
  // start, not 4); never sooner than the floor late replies set, after it
  // left.
  Duration margin_end(const Probe& probe) const;
  // Stop set: steps the backward walk on as far as the replies allow.
  void walk_back(Duration now);
  void take_over_below(const PathMemory::Known& known);

  Probe* find(const ProbeIdentity& id);
  // `probe` answered with `reply`; `diff`: the quote against it as sent.
  IcmpMatch answer(Probe& probe, Reply reply, const QuoteDiff& diff, bool shifted);
  // A quote that names no probe as it is: held under each shift that would
  // make it name one, until replies for enough different probes agree.
  IcmpMatch hold(const wire::QuotedTcp& quote, const Reply& reply);
  void note_changes(const QuoteDiff& diff, std::uint8_t ttl);
  void note_nat(const QuoteDiff& diff, std::uint8_t ttl);
  std::optional<std::uint8_t> loss_from_ttl(std::uint8_t last_ttl) const;

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
  bool peer_gone_ = false;
  bool ended_ = false;
  std::vector<HopEvent> new_replies_;
  std::vector<HopEvent> destination_replies_;  // held till the round's end

  std::uint8_t known_distance_ = 0;  // from earlier rounds
  Duration margin_floor_{0};          // from late replies in earlier rounds
  Duration slowest_reply_{0};         // the longest round trip of this round's replies
  // Per TTL (index ttl - 1), when the last probe that got an answer at a
  // higher TTL was sent.
  std::vector<std::optional<Duration>> answered_above_;
  std::array<std::uint8_t, probe_length_count> probe_lengths_{};
  // Sequence shift: confirmed (now or earlier), and the lowest TTL whose
  // quote showed it this round; the replies held meanwhile, oldest first.
  std::optional<std::uint32_t> seq_offset_;
  std::uint8_t shift_first_ttl_ = 0;
  struct Held {
    std::uint32_t offset = 0;
    std::size_t probe = 0;  // index into probes_
    Reply reply;
    QuoteDiff diff;
  };
  std::vector<Held> held_;
  std::size_t confirmed_earlier_ = 0;
  std::vector<Middlebox> middleboxes_;
  std::optional<Nat> nat_;
};

}  // namespace nfqtrace::core
