#include "nfqtrace/core/trace.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::core {

namespace {

// Replies for different probes that must agree on a sequence shift before
// it is believed.
constexpr std::size_t needed_to_confirm = 2;
// Replies held for an unconfirmed shift at most (a flood of forged ones
// pushes out the oldest; a real shift is confirmed by the next replies).
constexpr std::size_t max_held = 64;
// A silent TTL right below the destination is taken for a router's once the
// chance that the destination's own probes there all went unanswered is
// below this; until then it is asked again, up to this many batches more.
constexpr double doubt_level = 0.01;
constexpr unsigned max_doubt_batches = 2;

// Whether a quote whose sequence number names no probe could still be
// `probe`'s, shifted: the same IP length and, as far as the quote goes, the
// same IPv4 ID and payload. Both are secrets an off-path sender must guess
// (random IDs; the connection's own bytes, or random ones below its
// sequence number); an IPv6 quote without the payload could be anyone's.
bool could_be(const Probe& probe, const wire::QuotedTcp& q) {
  if (probe.id.ip_payload_len != q.ip_payload_len) return false;
  if (q.family == wire::Family::v4 && probe.id.ip_id != q.ip_id) return false;
  if (q.tcp.size() < 13) return q.family == wire::Family::v4;
  const std::size_t header = (std::size_t{q.tcp[12]} >> 4) * 4;
  const std::size_t quoted = q.tcp.size() > header ? q.tcp.size() - header : 0;
  const std::size_t n = std::min<std::size_t>(quoted, probe.header.payload_len);
  if (n == 0) return q.family == wire::Family::v4;
  return std::equal(probe.header.payload.begin(), probe.header.payload.begin() + static_cast<std::ptrdiff_t>(n),
                    q.tcp.begin() + static_cast<std::ptrdiff_t>(header));
}

}  // namespace

Trace::Trace(const TraceParams& params, const FlowKey& flow, std::uint32_t round, Instant start,
             const RoundStart& from)
    : params_(params),
      flow_(flow),
      round_(round),
      start_(start),
      hops_(params.max_ttl),
      known_distance_(from.known_distance),
      margin_floor_(from.silence_margin),
      answered_above_(params.max_ttl),
      probe_lengths_(from.probe_lengths),
      seq_offset_(from.seq_offset) {
  for (std::size_t i = 0; i < hops_.size(); ++i) hops_[i].ttl = static_cast<std::uint8_t>(i + 1);
  probes_.reserve(std::size_t{params.max_ttl} * params.ttl_repeat);
  if (from.memory && from.start_ttl && *from.start_ttl > 1 && *from.start_ttl < params.max_ttl &&
      params.mode == Mode::dup) {
    memory_ = from.memory;
    floor_ = *from.start_ttl;
    walk_done_ = false;
    // The destination was one further; one more in case the path grew.
    known_window_ = static_cast<std::uint8_t>(*from.start_ttl + 2);
  }
}

std::uint32_t Trace::next_probe_length(std::size_t ahead) const {
  const std::uint8_t length = probe_lengths_[(probes_.size() + ahead) % probe_length_count];
  return length == 0 ? 1u : length;
}

std::uint8_t Trace::known_distance() const {
  return destination_ttl_ != 0 ? destination_ttl_ : known_distance_;
}

void Trace::walk_back(Duration now) {
  while (!walk_done_) {
    const Hop& hop = hops_[floor_ - 1u];
    if (hop.probes_sent == 0) return;  // its probe goes with the next packet
    for (const Reply& r : hop.replies) {
      if (r.kind != ReplyKind::time_exceeded) continue;
      if (const PathMemory::Known* known = memory_->through(r.addr, floor_, now)) {
        take_over_below(*known);
        walk_done_ = true;
        return;
      }
    }
    // A router nobody met here yet, the destination, or silence: one lower.
    const bool silent_so_far = hop.replies.empty() && !all_settled_at(floor_);
    if (silent_so_far) return;
    if (floor_ == 1) {
      walk_done_ = true;
      return;
    }
    --floor_;
  }
}

void Trace::take_over_below(const PathMemory::Known& known) {
  taken_over_.clear();
  for (const Hop& h : *known.hops) {
    if (h.ttl >= floor_) break;
    Hop copy = h;
    // Taken over twice still names the trace that probed it.
    if (!copy.inferred_from) copy.inferred_from = InferredFrom{known.flow, known.round};
    taken_over_.push_back(std::move(copy));
  }
}

std::uint8_t Trace::last_router_ttl() const {
  for (std::size_t i = hops_.size(); i > 0; --i) {
    for (const Reply& r : hops_[i - 1].replies)
      if (r.kind != ReplyKind::destination) return static_cast<std::uint8_t>(i);
  }
  return 0;
}

std::uint8_t Trace::horizon() const {
  if (destination_ttl_ != 0) return destination_ttl_;
  const unsigned ahead = unsigned{last_router_ttl()} + params_.gap_limit;
  return static_cast<std::uint8_t>(std::min<unsigned>(params_.max_ttl, ahead));
}

bool Trace::all_settled(std::uint8_t up_to_ttl) const {
  return std::all_of(probes_.begin(), probes_.end(), [&](const Probe& p) {
    return p.ttl > up_to_ttl || p.answered || p.expired || p.inferred;
  });
}

bool Trace::first_pass_settled() const { return all_settled(params_.max_ttl); }

bool Trace::all_settled_at(std::uint8_t ttl) const {
  return std::all_of(probes_.begin(), probes_.end(), [&](const Probe& p) {
    return p.ttl != ttl || p.answered || p.expired || p.inferred;
  });
}

unsigned Trace::wanted_at(std::uint8_t ttl) const {
  const unsigned repeat = params_.ttl_repeat;
  const std::uint8_t d = destination_ttl_;
  if (params_.mode != Mode::dup || d <= floor_ || (ttl != d && ttl != d - 1)) return repeat;
  // Judged once the TTL had its --ttlrepeat probes, then batch by batch.
  const unsigned asked = hops_[d - 2u].probes_sent;
  if (asked < repeat || asked >= repeat * (1 + max_doubt_batches) ||
      !silence_in_doubt(static_cast<std::uint8_t>(d - 1)))
    return repeat;
  return (asked / repeat + 1) * repeat;
}

bool Trace::silence_in_doubt(std::uint8_t gap) const {
  if (!hops_[gap - 1u].replies.empty()) return false;
  unsigned unanswered = 0, answered = 0, settled = 0;
  for (const Probe& p : probes_) {
    const bool done = p.answered || p.expired || p.inferred;
    if (p.ttl == gap) {
      if (!done) return false;  // judged once all its answers had their time
      ++unanswered;
    } else if (p.ttl > gap && done) {
      ++settled;
      answered += p.answered ? 1u : 0u;
    }
  }
  if (unanswered == 0 || settled == 0) return false;
  const double missed = 1.0 - static_cast<double>(answered) / settled;
  return std::pow(missed, unanswered) > doubt_level;
}

std::uint8_t Trace::first_pass_limit() const {
  const unsigned answered_reach = unsigned{last_router_ttl()} + params_.gap_limit;
  const unsigned first = known_window_ != 0 ? known_window_ : params_.first_window;
  const unsigned window = std::max<unsigned>(first, answered_reach);
  return static_cast<std::uint8_t>(std::min<unsigned>(params_.max_ttl, std::max(window, 1u)));
}

void Trace::wanted_ttls(std::vector<std::uint8_t>& out) const {
  if (closing_) return;
  const std::uint8_t limit = destination_ttl_ != 0 ? destination_ttl_ : params_.max_ttl;
  const std::uint8_t h = horizon();

  if (params_.mode == Mode::mangle) {
    for (std::uint8_t t = 1; t <= h; ++t) {
      if (hops_[t - 1u].probes_sent < params_.ttl_repeat) {
        out.push_back(t);
        return;
      }
    }
    return;
  }

  // First pass: every TTL once, all at the same time, within the window
  // the answers so far allow.
  bool first_pass_open = false;
  const std::uint8_t window = destination_ttl_ != 0 ? limit : first_pass_limit();
  for (std::uint8_t t = floor_; t <= window; ++t) {
    if (hops_[t - 1u].probes_sent == 0) {
      out.push_back(t);
      first_pass_open = true;
    }
  }
  if (first_pass_open) return;
  // Second pass: once the first has shown how far to go.
  if (destination_ttl_ == 0 && !first_pass_settled()) return;
  for (std::uint8_t t = floor_; t <= h; ++t) {
    const unsigned want = wanted_at(t);
    for (unsigned n = hops_[t - 1u].probes_sent; n < want; ++n) out.push_back(t);
  }
}

bool Trace::range_in_use(std::uint32_t seq, std::uint32_t len) const {
  // Touching counts: [a, b) and [b, c) would reach the peer as one range.
  return std::any_of(probes_.begin(), probes_.end(), [&](const Probe& p) {
    return !wire::seq_before(p.id.seq + p.payload_len, seq) &&
           !wire::seq_before(seq + len, p.id.seq);
  });
}

bool Trace::identity_in_use(const ProbeIdentity& id) const {
  return std::any_of(probes_.begin(), probes_.end(), [&](const Probe& p) {
    return p.id.seq == id.seq && p.id.ip_payload_len == id.ip_payload_len &&
           p.id.ip_id == id.ip_id;
  });
}

void Trace::add_probe(const Probe& probe) {
  Probe& added = probes_.emplace_back(probe);
  added.ttl_first_sent = added.sent;
  if (hops_[probe.ttl - 1u].probes_sent > 0) {
    // A repeat: its TTL's first probe is the first of that TTL in probes_.
    const auto first = std::find_if(probes_.begin(), probes_.end(),
                                    [&](const Probe& p) { return p.ttl == probe.ttl; });
    added.ttl_first_sent = first->sent;
  }
  ++hops_[probe.ttl - 1u].probes_sent;
}

void Trace::record(const Probe& probe, const Reply& reply) {
  const std::uint8_t ttl = probe.ttl;
  slowest_reply_ = std::max(slowest_reply_, reply.rtt);
  note_answered(probe);
  hops_[ttl - 1u].replies.push_back(reply);
  // The destination's replies wait for the round's end, unless it is over.
  const bool held = reply.kind == ReplyKind::destination && !ended_;
  (held ? destination_replies_ : new_replies_).push_back(HopEvent{flow_, round_, ttl, reply});
}

bool Trace::below_done(std::uint8_t ttl) const {
  for (std::uint8_t t = floor_; t < ttl; ++t)
    if (hops_[t - 1u].probes_sent < wanted_at(t)) return false;
  return std::all_of(probes_.begin(), probes_.end(), [&](const Probe& p) {
    return p.ttl >= ttl || p.answered || p.expired;
  });
}

std::vector<HopEvent>& Trace::new_replies() {
  if (!destination_replies_.empty() && below_done(destination_ttl_)) release_destination_replies();
  return new_replies_;
}

void Trace::release_destination_replies() {
  for (HopEvent& hop : destination_replies_)
    if (hop.ttl <= destination_ttl_) new_replies_.push_back(std::move(hop));
  destination_replies_.clear();
}

Probe* Trace::find(const ProbeIdentity& id) {
  for (Probe& p : probes_) {
    if (p.id.seq == id.seq && p.id.ip_payload_len == id.ip_payload_len && p.id.ip_id == id.ip_id)
      return &p;
  }
  return nullptr;
}

std::optional<std::uint32_t> Trace::last_probe_end(std::uint32_t from, std::uint32_t to) const {
  std::optional<std::uint32_t> last;
  for (const Probe& p : probes_) {
    const std::uint32_t end = p.id.seq + p.payload_len;
    if (wire::seq_before(p.id.seq, from) || wire::seq_before(to, end)) continue;
    if (!last || wire::seq_before(*last, end)) last = end;
  }
  return last;
}

IcmpMatch Trace::on_icmp(const wire::QuotedTcp& q, Reply reply) {
  ProbeIdentity id{q.seq, q.ip_payload_len,
                   q.family == wire::Family::v4 ? q.ip_id : std::uint16_t{0}};
  if (Probe* p = find(id)) return answer(*p, reply, compare(p->header, flow_, q), false);
  if (seq_offset_) {
    id.seq = q.seq - *seq_offset_;
    if (Probe* p = find(id)) return answer(*p, reply, compare(p->header, flow_, q), true);
  }
  return hold(q, reply);
}

IcmpMatch Trace::answer(Probe& p, Reply reply, const QuoteDiff& diff, bool shifted) {
  // A second reply to one probe proves nothing new, nor, once the round is
  // over, one to a probe that had waited its --timeout.
  if (p.answered || (ended_ && !p.inferred)) return IcmpMatch::repeated;
  p.answered = true;
  reply.late = p.inferred;
  p.inferred = false;
  reply.rtt = reply.at.mono - p.sent;
  reply.changes = diff.fields;
  note_changes(diff, p.ttl);
  note_nat(diff, p.ttl);
  if (shifted && (shift_first_ttl_ == 0 || p.ttl < shift_first_ttl_)) shift_first_ttl_ = p.ttl;
  record(p, reply);
  walk_back(reply.at.mono);
  return IcmpMatch::matched;
}

IcmpMatch Trace::hold(const wire::QuotedTcp& q, const Reply& reply) {
  bool held = false;
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    const Probe& p = probes_[i];
    if (p.answered || !could_be(p, q)) continue;
    const std::uint32_t offset = q.seq - p.id.seq;
    const auto same = [&](const Held& h) { return h.offset == offset && h.probe == i; };
    if (std::any_of(held_.begin(), held_.end(), same)) continue;  // a repeated reply
    if (held_.size() == max_held) held_.erase(held_.begin());
    held_.push_back(Held{offset, i, reply, compare(p.header, flow_, q)});
    held = true;
    // Replies naming this many different probes agree on the shift.
    const auto agreeing = std::count_if(held_.begin(), held_.end(),
                                        [&](const Held& h) { return h.offset == offset; });
    if (static_cast<std::size_t>(agreeing) < needed_to_confirm) continue;
    seq_offset_ = offset;
    std::vector<Held> confirmed;
    for (Held& h : held_)
      if (h.offset == offset) confirmed.push_back(std::move(h));
    held_.clear();  // the others named probes under shifts that did not hold
    for (Held& h : confirmed) answer(probes_[h.probe], std::move(h.reply), h.diff, true);
    confirmed_earlier_ += confirmed.size() - 1;  // this reply's own is counted by the caller
    return IcmpMatch::matched;
  }
  return held ? IcmpMatch::pending : IcmpMatch::no_probe;
}

void Trace::note_changes(const QuoteDiff& diff, std::uint8_t ttl) {
  for (const FieldChange& c : diff.changes) {
    auto it = std::find_if(middleboxes_.begin(), middleboxes_.end(),
                           [&](const Middlebox& m) { return m.field == c.field; });
    if (it == middleboxes_.end()) {
      middleboxes_.push_back(Middlebox{c.field, ttl, c.sent, c.seen});
    } else if (ttl < it->first_seen_ttl) {
      *it = Middlebox{c.field, ttl, c.sent, c.seen};
    }
  }
}

void Trace::note_nat(const QuoteDiff& diff, std::uint8_t ttl) {
  const FieldSet& f = diff.fields;
  std::string evidence;
  for (const FieldChange& c : diff.changes) {
    const bool address = c.field == Field::ip_src || c.field == Field::ip_dst;
    const bool port = c.field == Field::tcp_sport || c.field == Field::tcp_dport;
    if (!address && !port) continue;
    if (!evidence.empty()) evidence += ", ";
    evidence += std::string(to_string(c.field)) + " translated";
  }
  // Translated back in the quote, but not its checksum (Dublin traceroute's
  // sign): nothing else the checksum covers changed.
  if (evidence.empty() && f.contains(Field::tcp_checksum)) {
    bool other = false;
    for (Field covered : {Field::tcp_seq, Field::tcp_ack, Field::tcp_flags, Field::tcp_window,
                          Field::tcp_options, Field::payload, Field::ip_len, Field::ip6_plen})
      other = other || f.contains(covered);
    if (!other) evidence = "tcp.checksum changed, addresses and ports as sent";
  }
  if (evidence.empty()) return;
  if (!nat_ || !nat_->first_seen_ttl || ttl < *nat_->first_seen_ttl)
    nat_ = Nat{ttl, evidence, {}, {}};
}

namespace {
Reply destination_reply(const wire::Address& peer, Instant at, std::uint8_t reply_ttl,
                        const Probe& p) {
  Reply r;
  r.addr = peer;
  r.at = at;
  r.rtt = at.mono - p.sent;
  r.kind = ReplyKind::destination;
  r.reply_ttl = reply_ttl;
  return r;
}
}  // namespace

bool Trace::on_peer_sack(std::uint32_t left, std::uint32_t right, const wire::Address& peer,
                         Instant at, std::uint8_t reply_ttl) {
  for (Probe& p : probes_) {
    if (p.answered || p.payload_len == 0 || p.id.seq != left || p.id.seq + p.payload_len != right)
      continue;
    if (ended_ && !p.inferred) continue;  // waited its --timeout: too late
    p.answered = true;
    if (ended_) {  // taken for silent: its reply, late
      p.inferred = false;
      // Beyond the destination it only confirms what the trace showed.
      if (p.ttl > destination_ttl_ && destination_ttl_ != 0) return true;
      Reply late = destination_reply(peer, at, reply_ttl, p);
      late.late = true;
      record(p, late);
      return true;
    }
    // Probes beyond the first one to arrive only confirm what is known.
    if (destination_ttl_ != 0 && p.ttl > destination_ttl_) {
      note_answered(p);
      return true;
    }
    destination_ttl_ = p.ttl;
    record(p, destination_reply(peer, at, reply_ttl, p));
    walk_back(at.mono);
    return true;
  }
  return false;
}

bool Trace::on_peer_ack(std::uint32_t ack, const wire::Address& peer, Instant at,
                        std::uint8_t reply_ttl) {
  if (params_.mode != Mode::mangle) return false;
  bool matched = false;
  for (Probe& p : probes_) {
    if (p.answered || p.retransmitted || p.payload_len == 0) continue;
    if (wire::seq_before(ack, p.id.seq + p.payload_len)) continue;
    // The peer holds every byte of a mangled original that was never resent:
    // that very packet was delivered.
    p.answered = true;
    matched = true;
    if (destination_ttl_ != 0 && p.ttl > destination_ttl_) {
      note_answered(p);
      continue;
    }
    destination_ttl_ = p.ttl;
    record(p, destination_reply(peer, at, reply_ttl, p));
  }
  return matched;
}

void Trace::on_retransmission(std::uint32_t seq, std::uint32_t end) {
  for (Probe& p : probes_) {
    if (p.payload_len == 0) continue;
    const std::uint32_t p_end = p.id.seq + p.payload_len;
    if (wire::seq_before(seq, p_end) && wire::seq_before(p.id.seq, end)) p.retransmitted = true;
  }
}

// Scheduling and timers: a reply is never taken for missing sooner.
constexpr Duration silence_slack = std::chrono::milliseconds(10);

Duration Trace::margin_end(const Probe& p) const {
  const Duration after_first = p.ttl_first_sent + 3 * slowest_reply_;
  const Duration after_own = p.sent + std::max(2 * slowest_reply_, margin_floor_);
  return std::max(after_first, after_own) + silence_slack;
}

void Trace::expire(Duration now) {
  for (Probe& p : probes_) {
    if (p.answered || p.expired) continue;
    if (p.expires <= now) {
      p.expired = true;
      p.inferred = false;
    } else if (const auto silent = silent_at(p); !p.inferred && silent && *silent <= now) {
      p.inferred = true;
    }
  }
  walk_back(now);
}

void Trace::note_answered(const Probe& p) {
  // Answers are few, lookups (every unanswered probe, at every event of the
  // round) many: the answer is noted for every TTL below it.
  for (std::size_t i = 0; i + 1 < p.ttl; ++i) {
    auto& newest = answered_above_[i];
    if (!newest || *newest < p.sent) newest = p.sent;
  }
}

std::optional<Duration> Trace::silent_at(const Probe& p) const {
  const std::optional<Duration>& above = answered_above_[p.ttl - 1u];
  // A nearer router's ICMP is no slower than a further one's (but under
  // rate limiting, which the repeats absorb): it is silent.
  if (above && *above >= p.sent) return margin_end(p);
  // A duplicate at or beyond the destination's TTL can only be answered by
  // the peer, at once, and a busy Linux peer may never answer it: it keeps
  // one D-SACK pending, which the next duplicate replaces (tcp_dsack_set)
  // and the next data segment clears (tcp_data_queue) while the ACK for a
  // copy of data it holds out of order waits (SACK compression, or deferred
  // while the application holds the socket).
  if (params_.mode == Mode::dup && destination_ttl_ != 0 && p.ttl >= destination_ttl_)
    return margin_end(p);
  // Only an earlier wave's answers: on a busy host a whole wave's answers
  // can come late, and those say nothing of it. A wave none of whose higher
  // TTLs answered (their routers rate-limiting, the peer's D-SACKs
  // replaced) waits a quarter of --timeout.
  if (above) return std::max(margin_end(p), p.sent + params_.timeout / 4);
  return std::nullopt;
}

std::optional<Duration> Trace::next_expiry() const {
  std::optional<Duration> next;
  for (const Probe& p : probes_) {
    if (p.answered || p.expired) continue;
    Duration due = p.expires;
    if (const auto silent = silent_at(p); !p.inferred && silent) due = std::min(due, *silent);
    if (!next || due < *next) next = due;
  }
  return next;
}

std::optional<Duration> Trace::last_expiry() const {
  std::optional<Duration> last;
  for (const Probe& p : probes_)
    if (!p.answered && (!last || *last < p.expires)) last = p.expires;
  return last;
}

std::optional<StopReason> Trace::finished() const {
  if (!walk_done_) return closing_ && all_settled(params_.max_ttl) ? std::optional(StopReason::closed)
                                                                   : std::nullopt;
  if (destination_ttl_ != 0) {
    if (!all_settled(destination_ttl_)) return std::nullopt;
    for (std::uint8_t t = floor_; t <= destination_ttl_; ++t)
      if (hops_[t - 1u].probes_sent < wanted_at(t))
        return closing_ ? std::optional(StopReason::closed) : std::nullopt;
    if (peer_gone_) {
      for (std::uint8_t t = floor_; t < destination_ttl_; ++t)
        if (hops_[t - 1u].replies.empty()) return StopReason::closed;
    }
    return StopReason::reached;
  }
  if (!all_settled(params_.max_ttl)) return std::nullopt;
  const std::uint8_t h = horizon();
  bool all_sent = true;
  for (std::uint8_t t = floor_; t <= h; ++t)
    if (hops_[t - 1u].probes_sent < params_.ttl_repeat) all_sent = false;
  if (all_sent) {
    const unsigned ahead = unsigned{last_router_ttl()} + params_.gap_limit;
    return ahead <= params_.max_ttl ? StopReason::gaplimit : StopReason::maxttl;
  }
  if (closing_) return StopReason::closed;
  return std::nullopt;
}

TraceResult Trace::result(StopReason reason, Instant end) const {
  TraceResult r;
  r.flow = flow_;
  r.round = round_;
  r.mode = params_.mode;
  r.start = start_;
  r.end = end;
  r.reached = destination_ttl_ != 0;
  r.reason = reason;
  r.probes_sent = static_cast<std::uint32_t>(probes_.size());
  std::size_t shown = 0;
  switch (reason) {
    case StopReason::reached: shown = destination_ttl_; break;
    case StopReason::gaplimit: shown = std::size_t{last_router_ttl()} + params_.gap_limit; break;
    case StopReason::maxttl: shown = params_.max_ttl; break;
    case StopReason::closed:
    case StopReason::stopped:
      shown = destination_ttl_ != 0 ? destination_ttl_ : last_router_ttl();
      break;
  }
  shown = std::min(shown, hops_.size());
  r.hops.reserve(shown);
  // Below the floor: the hops taken over from a recent trace, if any.
  for (const Hop& h : taken_over_) {
    if (r.hops.size() >= shown) break;
    r.hops.push_back(h);
  }
  for (std::size_t i = r.hops.size(); i < shown; ++i) {
    Hop hop = hops_[i];
    if (hop.replies.empty() && hop.probes_sent > 0) {
      bool inferred = false, waited = false;
      for (const Probe& p : probes_) {
        if (p.ttl != hop.ttl) continue;
        inferred = inferred || p.inferred;
        waited = waited || p.expired;
      }
      hop.silent = inferred ? Silence::inferred : waited ? Silence::timeout : Silence::none;
      // Its answer may be among those the peer's reset cut off: unanswered,
      // with no claim of a silent router.
      if (peer_gone_ && hop.ttl < destination_ttl_) hop.silent = Silence::none;
    }
    r.hops.push_back(std::move(hop));
  }

  r.middleboxes = middleboxes_;
  std::stable_sort(r.middleboxes.begin(), r.middleboxes.end(),
                   [](const Middlebox& a, const Middlebox& b) { return a.first_seen_ttl < b.first_seen_ttl; });
  if (seq_offset_ && shift_first_ttl_ != 0)
    r.rewrites.push_back(Rewrite{Field::tcp_seq, *seq_offset_, shift_first_ttl_});
  r.nat = nat_;
  // A router answering from the destination's own address, closer than the
  // destination: that address is a NAT, and the peer is behind it.
  for (std::uint8_t t = 1; t < destination_ttl_; ++t) {
    const auto& replies = hops_[t - 1u].replies;
    const bool from_destination = std::any_of(replies.begin(), replies.end(), [&](const Reply& x) {
      return x.kind == ReplyKind::time_exceeded && x.addr == flow_.dst;
    });
    if (!from_destination) continue;
    if (!r.nat || !r.nat->first_seen_ttl || t < *r.nat->first_seen_ttl) {
      r.nat = Nat{t, "time-exceeded from the destination's address at ttl " + std::to_string(t) +
                         ", the destination at ttl " + std::to_string(destination_ttl_),
                  {}, {}};
    }
    break;
  }
  return r;
}

}  // namespace nfqtrace::core
