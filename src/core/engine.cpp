#include "nfqtrace/core/engine.hpp"

#include <algorithm>

namespace nfqtrace::core {
namespace {

// Probes carry one byte each, two bytes apart: adjacent one-byte duplicates
// could be merged by the receiver (GRO, D-SACK extension) into one range
// that names no probe.
constexpr std::uint32_t probe_stride = 2;
// Offset 0 would share its sequence number with the original segment.
constexpr std::uint32_t first_probe_offset = 1;
// Mangle mode: a flow that sent no data in this many packets only ACKs.
constexpr std::uint32_t ack_only_after = 32;
// A peer's RST counts only with a sequence number this close above what the
// flow last acknowledged: the peer's own stack needs it exact (RFC 5961);
// the slack is for data that arrived after that ACK. An off-path sender
// guesses it once in 2^15 tries; a RST it gets wrong ends nothing.
constexpr std::uint32_t peer_rst_window = 1u << 17;
// A closed flow lingers this long, so that the last ACKs and retransmitted
// FINs of its close find it closed instead of starting a new trace.
constexpr Duration closed_linger = std::chrono::seconds(10);
// Mixed into the sampling hash, so the sampled set is not simply "low hashes".
constexpr std::size_t rng_seed_mix = 0x9e3779b97f4a7c15ull;

bool contains(const std::vector<std::uint16_t>& v, std::uint16_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

FlowKey outgoing_key(const wire::TcpPacket& p) { return FlowKey{p.src, p.dst, p.sport, p.dport}; }

void sanitize(TraceConfig& c) {
  if (c.max_ttl == 0) c.max_ttl = 1;
  if (c.ttl_repeat == 0) c.ttl_repeat = 1;
  if (c.packet_freq == 0) c.packet_freq = 1;
}

}  // namespace

Engine::Engine(TraceConfig config, FlowFilter filter)
    : config_(config),
      filter_(std::move(filter)),
      rng_(config.seed ? config.seed : 1),
      probe_tokens_(config.probe_burst) {
  sanitize(config_);
  default_config_ = std::make_shared<const TraceConfig>(config_);
  if (config_.stop_set) memory_.emplace(*config_.stop_set);
  trace_limit_ = config_.max_flows;
  if (config_.probes_per_second > 0) {
    // A trace's first wave is about a window of probes; the budget serves
    // this many of them within a timeout.
    const double paced = config_.probes_per_second *
                         std::chrono::duration<double>(config_.timeout).count() /
                         std::max<double>(config_.first_window, 1);
    trace_limit_ = std::min<std::size_t>(trace_limit_,
                                         std::max<std::size_t>(4, static_cast<std::size_t>(paced)));
  }
}

Engine::~Engine() = default;

std::uint16_t Engine::next_ip_id() {
  // xorshift32: IP IDs that do not repeat within a trace and are not a
  // counter an off-path sender could follow.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return static_cast<std::uint16_t>(rng_ >> 8);
}

std::size_t Engine::take_probe_budget(std::size_t wanted, Duration now) {
  if (config_.probes_per_second <= 0) return wanted;  // no pacing
  const double elapsed = std::chrono::duration<double>(now - tokens_at_).count();
  tokens_at_ = now;
  probe_tokens_ = std::min<double>(config_.probe_burst,
                                   probe_tokens_ + std::max(0.0, elapsed) * config_.probes_per_second);
  const auto granted = std::min<std::size_t>(wanted, static_cast<std::size_t>(probe_tokens_));
  probe_tokens_ -= static_cast<double>(granted);
  counters_.probes_deferred += wanted - granted;
  return granted;
}

bool Engine::sampled(const FlowKey& key) const {
  if (config_.sample >= 1.0) return true;
  // The same flow always hashes the same: in or out for its whole life.
  const std::size_t h = FlowKeyHash{}(key) ^ rng_seed_mix;
  return static_cast<double>(h % 1'000'000) < config_.sample * 1'000'000.0;
}

bool Engine::selected(const wire::TcpPacket& p) const {
  if (filter_.empty()) return true;
  if (filter_.host && *filter_.host != p.dst) return false;
  if (filter_.dports.empty() && filter_.sports.empty()) return true;
  return contains(filter_.dports, p.dport) || contains(filter_.sports, p.sport);
}

void Engine::arm(const FlowKey& key, Duration at) { timers_.push(Timer{at, key}); }

Engine::Flow* Engine::find_or_create(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it != flows_.end()) return &it->second;
  Flow& f = flows_[key];
  f.config = default_config_;
  f.last_seen = now.mono;
  f.idle_check = now.mono + config_.idle_timeout;
  arm(key, f.idle_check);
  return &f;
}

bool Engine::make_room(const FlowKey& key, Flow& f, Duration now) {
  admit_waiting(now);  // who came earlier goes first
  if (f.admitted) {  // its place was kept
    f.admitted = false;
    --admitting_;
    return true;
  }
  if (f.waiting) return false;
  if (running_ + admitting_ < trace_limit_) return true;
  f.waiting = true;
  ++counters_.flows_refused;
  // Waiting in the queue would cost every one of its packets a trip through
  // us: it waits past the queue until its turn.
  if (f.config->skip_finished_flows) {
    f.skipping = true;
    skip_changes_.push_back(SkipChange{key, true});
  }
  waiting_.push_back(key);
  return false;
}

void Engine::leave_waiting(Flow& f) {
  if (f.admitted) --admitting_;
  f.admitted = false;
  f.waiting = false;  // its place in waiting_ is skipped when reached
}

void Engine::admit_waiting(Duration now) {
  while (!waiting_.empty() && running_ + admitting_ < trace_limit_) {
    const FlowKey key = waiting_.front();
    waiting_.pop_front();
    auto it = flows_.find(key);
    if (it == flows_.end() || !it->second.waiting) continue;  // gone meanwhile
    Flow& f = it->second;
    f.waiting = false;
    f.admitted = true;
    // Its packets passed us by while it waited: that was no idleness.
    f.last_seen = now;
    ++admitting_;
    if (f.skipping) {
      f.skipping = false;
      ++counters_.flows_waited_past;
      skip_changes_.push_back(SkipChange{key, false});
    }
  }
}

void Engine::maybe_start_round(const FlowKey& key, Flow& f, Instant now) {
  if (f.trace || f.closing || stopped_) return;
  const TraceConfig& c = *f.config;
  if (f.rounds > 0 && (!c.repeat || now.mono < f.round_started + *c.repeat)) return;
  if (f.unsampled) return;
  if (f.rounds == 0 && !sampled(key)) {
    f.unsampled = true;
    ++counters_.flows_not_sampled;
    // Not ours to trace: its packets need not come through us at all.
    if (f.config->skip_finished_flows) {
      f.skipping = true;
      skip_changes_.push_back(SkipChange{key, true});
    }
    return;
  }
  if (!make_room(key, f, now.mono)) return;
  ++f.rounds;
  f.round_started = now.mono;
  f.packets_since_probe = c.packet_freq;  // the first chance is taken
  std::optional<std::uint8_t> start;
  if (memory_ && c.mode == Mode::dup) start = memory_->start_ttl(key.dst, now.mono);
  if (start) ++counters_.traces_from_stop_set;
  f.trace = std::make_unique<Trace>(c, key, f.rounds, now, memory_ ? &*memory_ : nullptr, start);
  ++running_;
  ++counters_.traces_started;
}

Verdict Engine::on_outgoing(const wire::TcpPacket& packet, const PacketMeta& meta, Instant now) {
  ++counters_.packets;
  Verdict verdict;
  if (!selected(packet)) {
    ++counters_.packets_not_selected;
    return verdict;
  }
  const FlowKey key = outgoing_key(packet);
  const bool ends_flow = packet.has(wire::tcp_flag::fin) || packet.has(wire::tcp_flag::rst);
  if (packet.has(wire::tcp_flag::syn)) restart(key, now);
  if ((ends_flow || filter_.requested_only) && !flows_.contains(key)) return verdict;

  Flow& f = *find_or_create(key, now);
  f.last_seen = now.mono;
  if (f.closing) return verdict;  // the last packets of a closed connection
  if (packet.has(wire::tcp_flag::ack)) {
    f.ack_known = true;
    f.acked = packet.ack;
  }
  const wire::Bytes payload = packet.payload();
  const TraceConfig& c = *f.config;
  if (f.trace && c.mode == Mode::mangle && packet.payload_len > 0)
    f.trace->on_retransmission(packet.seq, packet.end_seq());
  f.packets_since_data = packet.payload_len > 0 ? 0 : f.packets_since_data + 1;
  if (payload.size() >= 2) {
    f.sent.seq = packet.seq;
    f.sent.len = static_cast<std::uint16_t>(std::min(payload.size(), f.sent.bytes.size()));
    std::copy_n(payload.begin(), f.sent.len, f.sent.bytes.begin());
  }
  if (ends_flow) {
    close_flow(key, now);
    return verdict;
  }
  if (packet.has(wire::tcp_flag::syn)) return verdict;  // never probe with a handshake

  maybe_start_round(key, f, now);
  if (!f.trace) return verdict;

  ++f.packets_since_probe;
  if (c.mode == Mode::dup) {
    probe_dup(f, packet, meta, now);
  } else {
    verdict.set_ttl = probe_mangle(f, packet, meta, now);
  }
  settle(key, now);
  return verdict;
}

void Engine::probe_dup(Flow& f, const wire::TcpPacket& packet, const PacketMeta& meta,
                       Instant now) {
  wanted_.clear();
  f.trace->wanted_ttls(wanted_);
  if (wanted_.empty()) return;

  // The bytes the probes copy: this packet's own payload, else the last data
  // the flow sent. A flow that never sent data (a download) gets one-byte
  // probes just below its sequence number: sequence space the peer has
  // long acknowledged (the SYN's, then before it), which carried no data a
  // duplicate could contradict. The peer answers any old data at once, with
  // a D-SACK naming it, where a copy of a bare ACK would get no answer.
  wire::Bytes source;
  std::uint32_t source_seq = 0;
  const wire::Bytes payload = packet.payload();
  if (payload.size() >= 2) {
    source = payload;
    source_seq = packet.seq;
  } else if (f.sent.len >= 2) {
    source = wire::Bytes(f.sent.bytes.data(), f.sent.len);
    source_seq = f.sent.seq;
  }
  static constexpr std::uint8_t old_byte[1] = {0};

  // Within the --pps budget: lowest TTLs first, the rest with later packets.
  const std::size_t granted = take_probe_budget(wanted_.size(), now.mono);
  wanted_.resize(granted);
  if (wanted_.empty()) return;

  const std::uint32_t header_len = packet.tcp_header_len;
  std::uint32_t offset = first_probe_offset;
  std::uint32_t below = 1;  // probes below the flow: seq - 1, seq - 3, ...
  std::size_t sent_now = 0;
  for (std::uint8_t ttl : wanted_) {
    wire::ProbeFields fields;
    fields.ttl = ttl;
    fields.ip_id = packet.family == wire::Family::v4 ? next_ip_id() : 0;
    if (!source.empty()) {
      while (offset < source.size() && f.trace->seq_in_use(source_seq + offset))
        offset += probe_stride;
      if (offset >= source.size()) break;  // the rest waits for the next packet
      fields.seq = source_seq + offset;
      fields.payload = source.subspan(offset, 1);
      offset += probe_stride;
    } else {
      while (below < 4096 && f.trace->seq_in_use(packet.seq - below)) below += probe_stride;
      if (below >= 4096) break;
      fields.seq = packet.seq - below;
      fields.payload = wire::Bytes(old_byte);
      below += probe_stride;
    }
    ProbePacket& out = probes_.emplace_back();
    out.out_ifindex = meta.out_ifindex;
    const std::size_t size = wire::build_probe(packet, fields, out.bytes);
    if (size == 0) {
      probes_.pop_back();
      ++counters_.probes_unbuildable;
      break;
    }
    out.size = static_cast<std::uint16_t>(size);
    Probe p;
    p.id = ProbeIdentity{fields.seq,
                         header_len + static_cast<std::uint32_t>(fields.payload.size()),
                         fields.ip_id};
    p.payload_len = static_cast<std::uint32_t>(fields.payload.size());
    p.ttl = ttl;
    p.sent = now.mono;
    p.expires = now.mono + f.config->timeout;
    f.trace->add_probe(p);
    ++sent_now;
  }
  probe_tokens_ += static_cast<double>(granted - sent_now);  // unused budget goes back
  if (sent_now > 0) {
    counters_.probes_sent += sent_now;
    f.packets_since_probe = 0;
    arm(outgoing_key(packet), now.mono + f.config->timeout);
  }
}

std::optional<std::uint8_t> Engine::probe_mangle(Flow& f, const wire::TcpPacket& packet,
                                                 const PacketMeta& meta, Instant now) {
  if (f.packets_since_probe < f.config->packet_freq) return std::nullopt;
  // A bare ACK that reaches the peer leaves no trace of it (nothing is
  // acknowledged), so the TTL would look silent: probe with data while the
  // flow sends any. A flow that only ACKs is probed with its ACKs: its
  // routers answer, its destination stays unconfirmed.
  if (packet.payload_len == 0 && f.packets_since_data < ack_only_after) return std::nullopt;
  // The verdict must carry the whole packet: only what was captured whole,
  // and never a GSO super-packet (its loss would cost dozens of segments).
  if (meta.gso || packet.captured.size() < std::size_t{packet.ip_header_len} +
                                               packet.tcp_header_len + packet.payload_len)
    return std::nullopt;
  wanted_.clear();
  f.trace->wanted_ttls(wanted_);
  if (wanted_.empty()) return std::nullopt;
  const ProbeIdentity id{packet.seq, std::uint32_t{packet.tcp_header_len} + packet.payload_len,
                         packet.family == wire::Family::v4 ? packet.ip_id : std::uint16_t{0}};
  if (f.trace->identity_in_use(id)) return std::nullopt;  // a reply could not tell them apart
  if (take_probe_budget(1, now.mono) == 0) return std::nullopt;

  Probe p;
  p.id = id;
  p.payload_len = packet.payload_len;
  p.ttl = wanted_.front();
  p.sent = now.mono;
  p.expires = now.mono + f.config->timeout;
  f.trace->add_probe(p);
  f.packets_since_probe = 0;
  ++counters_.packets_mangled;
  ++counters_.probes_sent;
  arm(outgoing_key(packet), p.expires);
  return p.ttl;
}

void Engine::request_trace(const FlowKey& key, const TraceConfig& config, Instant now) {
  if (stopped_) return;
  Flow& f = *find_or_create(key, now);
  auto own = std::make_shared<TraceConfig>(config);
  sanitize(*own);
  // What the runtime can do is the engine's to say, not the flow's.
  own->skip_finished_flows = config_.skip_finished_flows;
  f.config = std::move(own);
}

void Engine::forget(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  Flow& f = it->second;
  if (f.skipping) skip_changes_.push_back(SkipChange{key, false});
  leave_waiting(f);
  const bool ran = f.trace != nullptr;
  if (ran) {  // probes may still be out: it ends now all the same
    take_replies(f);
    finished_.push_back(f.trace->result(f.trace->finished().value_or(StopReason::closed), now));
    ++counters_.traces_ended;
    --running_;
  }
  flows_.erase(it);
  if (ran) admit_waiting(now.mono);
}

void Engine::take_replies(Flow& f) {
  auto& replies = f.trace->new_replies();
  hop_events_.insert(hop_events_.end(), replies.begin(), replies.end());
  replies.clear();
}

void Engine::restart(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  const Flow& f = it->second;
  // A retransmitted SYN of the handshake we saw: the same connection.
  if (f.rounds == 0 && !f.closing && !f.skipping && !f.unsampled) return;
  forget(key, now);
}

void Engine::on_peer_packet(const wire::TcpPacket& packet, Instant at) {
  ++counters_.peer_packets;
  const FlowKey key = outgoing_key(packet).reversed();
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  Flow& f = it->second;
  if (f.closing) return;
  f.last_seen = at.mono;
  if (f.trace) {
    const wire::SackBlocks sacks = wire::parse_sack(packet.options());
    for (std::uint8_t i = 0; i < sacks.count; ++i) {
      if (f.trace->on_peer_sack(sacks.blocks[i].left, sacks.blocks[i].right, packet.src, at,
                                packet.ttl))
        ++counters_.peer_evidence;
    }
    if (packet.has(wire::tcp_flag::ack) &&
        f.trace->on_peer_ack(packet.ack, packet.src, at, packet.ttl))
      ++counters_.peer_evidence;
  }
  // A FIN from the peer ends only its half: the flow may go on sending (and
  // be traced) until it closes its own side, which we see.
  if (packet.has(wire::tcp_flag::rst)) {
    if (f.ack_known && packet.seq - f.acked < peer_rst_window) {
      close_flow(key, at);
      return;
    }
    ++counters_.peer_resets_rejected;
  }
  settle(key, at);
}

bool Engine::on_icmp(const wire::IcmpError& error, Instant at) {
  const wire::QuotedTcp& q = error.quote;
  auto it = flows_.find(FlowKey{q.src, q.dst, q.sport, q.dport});
  if (it == flows_.end() || !it->second.trace) {
    ++(it == flows_.end() ? counters_.icmp_no_flow : counters_.icmp_no_trace);
    return false;
  }
  Reply reply;
  reply.addr = error.from;
  reply.at = at;
  reply.kind = error.kind == wire::IcmpKind::time_exceeded ? ReplyKind::time_exceeded
                                                           : ReplyKind::unreachable;
  reply.icmp_code = error.code;
  reply.reply_ttl = error.reply_ttl;
  reply.quoted_ttl = q.ttl;
  const ProbeIdentity id{q.seq, q.ip_payload_len,
                         q.family == wire::Family::v4 ? q.ip_id : std::uint16_t{0}};
  const IcmpMatch match = it->second.trace->on_icmp(id, reply);
  switch (match) {
    case IcmpMatch::matched: ++counters_.icmp_matched; break;
    case IcmpMatch::no_probe: ++counters_.icmp_no_probe; break;
    case IcmpMatch::repeated: ++counters_.icmp_repeated; break;
  }
  settle(it->first, at);
  return match != IcmpMatch::no_probe;
}

void Engine::on_timer(Instant now) {
  while (!timers_.empty() && timers_.top().at <= now.mono) {
    const Timer timer = timers_.top();
    timers_.pop();
    auto it = flows_.find(timer.key);
    if (it == flows_.end()) continue;
    Flow& f = it->second;
    if (f.trace) f.trace->expire(now.mono);
    if (f.closing) {
      if (!f.trace && f.closed_at + closed_linger <= now.mono) {
        flows_.erase(it);
        continue;
      }
    } else {
      if (f.skipping && !f.waiting && f.rounds > 0 && f.config->repeat &&
          f.round_started + *f.config->repeat <= now.mono) {
        // Time for its next round: its packets come back to us.
        f.skipping = false;
        f.last_seen = now.mono;
        skip_changes_.push_back(SkipChange{timer.key, false});
      }
      if (timer.at == f.idle_check && !on_idle_check(timer.key, f, now)) continue;
    }
    settle(timer.key, now);
  }
}

bool Engine::on_idle_check(const FlowKey& key, Flow& f, Instant now) {
  if (f.skipping) {
    // Unseen while skipping is not idleness (its packets pass us by); ask
    // instead whether its connection still exists: a flow forgotten while
    // its connection lives would keep its mark, and its end would go
    // unseen.
    skip_changes_.push_back(SkipChange{key, true, true});
    f.idle_check = now.mono + config_.idle_timeout;
    arm(key, f.idle_check);
    return true;
  }
  const Duration idle_at = f.last_seen + config_.idle_timeout;
  if (idle_at <= now.mono) {
    expire_idle(key, now);
    return false;
  }
  f.idle_check = idle_at;
  arm(key, idle_at);
  return true;
}

void Engine::skip_applied(const SkipChange& change, bool ok, bool connection_gone, Instant now) {
  // A cleared mark needs nothing more, done or not: the flow was leaving
  // the skip (and may be gone, or a new connection on the same ports).
  if (!change.skip) return;
  auto it = flows_.find(change.flow);
  if (it == flows_.end() || !it->second.skipping) return;
  Flow& f = it->second;
  if (connection_gone) {
    f.skipping = false;  // no mark left to clear
    forget(change.flow, now);
    return;
  }
  if (!ok) {
    // The packets keep coming: the flow stays as it was, traced or done.
    f.skipping = false;
    return;
  }
  if (change.recheck || f.waiting) return;
  ++counters_.flows_skipped;
  // Without a next round the state stays until the flow has been idle a
  // while: packets queued before the mark took effect still arrive, and must
  // find the flow done rather than start it afresh.
  if (f.config->repeat) arm(change.flow, f.round_started + *f.config->repeat);
}

void Engine::expire_idle(const FlowKey& key, Instant now) {
  // Silent this long, the flow is gone whatever its probes still wait for.
  forget(key, now);
}

bool Engine::settle(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return false;
  Flow& f = it->second;
  if (!f.trace) return true;
  take_replies(f);
  const std::optional<StopReason> reason = f.trace->finished();
  if (!reason) return true;
  finished_.push_back(f.trace->result(*reason, now));
  if (memory_) memory_->learn(finished_.back(), now.mono);
  ++counters_.traces_ended;
  --running_;
  f.trace.reset();
  admit_waiting(now.mono);
  if (f.closing) {
    arm(key, std::max(now.mono, f.closed_at + closed_linger));
    return true;
  }
  if (f.config->skip_finished_flows && !stopped_) {
    f.skipping = true;
    skip_changes_.push_back(SkipChange{key, true});
  }
  return true;
}

void Engine::close_flow(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.closing) return;
  Flow& f = it->second;
  f.closing = true;
  f.closed_at = now.mono;
  leave_waiting(f);
  // Conntrack keeps a closed connection (and its mark) for minutes: a new
  // connection on the same ports would inherit the skip.
  if (f.skipping) {
    f.skipping = false;
    skip_changes_.push_back(SkipChange{key, false});
  }
  if (f.trace) f.trace->close();
  arm(key, now.mono + closed_linger);
  settle(key, now);
}

void Engine::stop(Instant now) {
  stopped_ = true;
  for (auto& [key, f] : flows_) {
    if (!f.trace) continue;
    take_replies(f);
    finished_.push_back(f.trace->result(StopReason::stopped, now));
    ++counters_.traces_ended;
    f.trace.reset();
  }
  running_ = 0;
  admitting_ = 0;
  waiting_.clear();
  flows_.clear();
}

std::optional<Duration> Engine::next_deadline() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.top().at;
}

}  // namespace nfqtrace::core
