#include "nfqtrace/core/engine.hpp"

#include <algorithm>
#include <utility>

#include "nfqtrace/core/probe_layout.hpp"

namespace nfqtrace::core {
namespace {

// Mangle mode: a flow that sent no data in this many packets only ACKs.
constexpr std::uint32_t ack_only_after = 32;
// A peer's RST counts only with a sequence number this close above what the
// flow last acknowledged: the peer's own stack needs it exact (RFC 5961);
// the slack is for data that arrived after that ACK. An off-path sender
// guesses it once in 2^15 tries; a RST it gets wrong ends nothing.
constexpr std::uint32_t peer_rst_window = 1u << 17;
// A closed flow lingers this long after its last packet, and twice the gap
// before it, so that the last ACKs and retransmissions of its close (backing
// off for seconds on a lossy path) find it closed instead of starting anew.
constexpr Duration closed_linger = std::chrono::seconds(10);
Duration linger_end(const Flow& f) { return f.last_seen + closed_linger + 2 * f.close_gap; }
// Mixed into the sampling hash, so the sampled set is not simply "low hashes".
constexpr std::size_t sample_hash_mix = 0x9e3779b97f4a7c15ull;

bool contains(const std::vector<std::uint16_t>& v, std::uint16_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

FlowKey outgoing_key(const wire::TcpPacket& p) { return FlowKey{p.src, p.dst, p.sport, p.dport}; }

}  // namespace

Engine::Engine(EngineConfig config, FlowFilter filter)
    : config_(std::move(config)),
      filter_(std::move(filter)),
      admission_(1),
      budget_(config_.probes_per_second, config_.probe_burst),
      random_(config_.seed) {
  config_.trace = config_.trace.sanitized();
  default_params_ = std::make_shared<const TraceParams>(config_.trace);
  if (config_.stop_set) memory_.emplace(*config_.stop_set);
  admission_ = Admission(Admission::limit_for(config_));
}

Engine::~Engine() = default;

std::optional<Phase> Engine::phase(const FlowKey& flow) const {
  auto it = flows_.find(flow);
  if (it == flows_.end()) return std::nullopt;
  return it->second.phase;
}

bool Engine::sampled(const FlowKey& key) const {
  if (config_.sample >= 1.0) return true;
  // The same flow always hashes the same: in or out for its whole life.
  const std::size_t h = FlowKeyHash{}(key) ^ sample_hash_mix;
  return static_cast<double>(h % 1'000'000) < config_.sample * 1'000'000.0;
}

bool Engine::selected(const wire::TcpPacket& p) const {
  if (filter_.empty()) return true;
  if (filter_.host && *filter_.host != p.dst) return false;
  if (filter_.dports.empty() && filter_.sports.empty()) return true;
  return contains(filter_.dports, p.dport) || contains(filter_.sports, p.sport);
}

// --- timers ---------------------------------------------------------------

void Engine::arm(const FlowKey& key, Flow& f, FlowTimer which, Duration at) {
  f.timer(which) = at;
  timers_.push(TimerEntry{at, key, which});
}

void Engine::arm_by(const FlowKey& key, Flow& f, FlowTimer which, Duration at) {
  const auto& pending = f.timer(which);
  if (!pending || at < *pending) arm(key, f, which, at);
}

std::optional<Duration> Engine::poll_timeout() {
  while (!timers_.empty()) {
    const TimerEntry& top = timers_.top();
    auto it = flows_.find(top.flow);
    if (it != flows_.end() && it->second.timer(top.which) == top.at) return top.at;
    timers_.pop();  // stale: the flow is gone, or that timer moved
  }
  return std::nullopt;
}

void Engine::on_timer(Instant now) {
  while (!timers_.empty() && timers_.top().at <= now.mono) {
    const TimerEntry entry = timers_.top();
    timers_.pop();
    auto it = flows_.find(entry.flow);
    if (it == flows_.end()) continue;
    Flow& f = it->second;
    if (f.timer(entry.which) != entry.at) continue;  // stale
    f.timer(entry.which).reset();
    on_flow_timer(entry.flow, f, entry.which, now);
  }
}

void Engine::on_flow_timer(const FlowKey& key, Flow& f, FlowTimer which, Instant now) {
  switch (which) {
    case FlowTimer::probe_expiry:
      if (!f.trace) return;
      f.trace->expire(now.mono);
      if (auto next = f.trace->next_expiry()) arm(key, f, FlowTimer::probe_expiry, *next);
      settle(key, f, now);
      return;
    case FlowTimer::idle_check:
      on_idle_check(key, f, now);
      return;
    case FlowTimer::linger:
      // A round still running when the linger ends re-arms it when it ends.
      if (f.phase != Phase::closing || f.trace) return;
      if (now.mono < linger_end(f)) {
        arm(key, f, FlowTimer::linger, linger_end(f));
        return;
      }
      flows_.erase(key);
      return;
    case FlowTimer::next_round:
      if (f.phase == Phase::resting && passes_queue(f.skip) && f.round_due(now.mono)) {
        f.last_seen = now.mono;
        // Its next round begins with its next retransmission, or with its
        // next packet: it comes back to us.
        if (config_.trigger == Trigger::retransmit) {
          enter(key, f, Phase::watching, now);
        } else {
          set_skip(key, f, next_packet_skip());
        }
      }
      return;
  }
}

void Engine::on_idle_check(const FlowKey& key, Flow& f, Instant now) {
  if (f.phase == Phase::closing) return;  // the linger ends it
  if (passes_queue(f.skip)) {
    // Unseen while skipping is not idleness (its packets pass us by); ask
    // instead whether its connection still exists: a flow forgotten while
    // its connection lives would keep its mark, and its end would go
    // unseen.
    outputs_.push(SkipChange{key, f.skip, true});
    arm(key, f, FlowTimer::idle_check, now.mono + config_.idle_timeout);
    return;
  }
  const Duration idle_at = f.last_seen + config_.idle_timeout;
  if (idle_at <= now.mono) {
    // Silent this long, the flow is gone whatever its probes still wait for.
    forget(key, now);
    return;
  }
  arm(key, f, FlowTimer::idle_check, idle_at);
}

// --- the lifecycle ----------------------------------------------------------

Flow& Engine::find_or_create(const FlowKey& key, Instant now) {
  auto [it, created] = flows_.try_emplace(key);
  Flow& f = it->second;
  if (created) {
    f.params = default_params_;
    f.last_seen = now.mono;
    arm(key, f, FlowTimer::idle_check, now.mono + config_.idle_timeout);
  }
  return f;
}

void Engine::set_skip(const FlowKey& key, Flow& f, Skip skip) {
  if (f.skip == skip) return;
  f.skip = skip;
  outputs_.push(SkipChange{key, skip});
}

void Engine::skip_between_waves(const FlowKey& key, Flow& f) {
  // Mangle mode probes with the flow's own packets: it needs them all.
  if (!config_.skip_marks || f.phase != Phase::tracing || f.params->mode != Mode::dup) return;
  wanted_.clear();
  f.trace->wanted_ttls(wanted_);
  if (wanted_.empty()) {
    set_skip(key, f, Skip::replies);
  } else {
    set_skip(key, f, f.wave_short_of_data ? Skip::none : next_packet_skip());
  }
}

Skip Engine::next_packet_skip() const {
  return config_.skip_marks && config_.one_copy_waves ? Skip::wave : Skip::none;
}

Skip Engine::mangle_skip() const {
  return config_.skip_marks && config_.queue_by_mark ? Skip::queued : Skip::none;
}

bool Engine::note_sent(Flow& f, const wire::TcpPacket& packet, Duration now) {
  if (auto ts = wire::parse_timestamps(packet.options())) f.clock.on_own(ts->val, now);
  if (packet.payload_len == 0) return false;
  const bool again = f.sent_end && wire::seq_before(packet.seq, *f.sent_end);
  if (!f.sent_end || wire::seq_before(*f.sent_end, packet.end_seq())) f.sent_end = packet.end_seq();
  return again;
}

void Engine::trigger(const FlowKey& key, Flow& f, Instant now) {
  ++counters_.retransmissions;
  admit_waiting(now);  // who came earlier goes first
  f.triggered = true;
  if (admission_.keep()) {
    enter(key, f, Phase::admitted, now);
  } else {
    enter(key, f, Phase::waiting, now);
  }
}

void Engine::enter(const FlowKey& key, Flow& f, Phase to, Instant now) {
  if (!allowed_transition(f.phase, to)) ++counters_.illegal_transitions;
  const Phase from = f.phase;
  f.phase = to;
  switch (to) {
    case Phase::fresh:
      break;
    case Phase::unsampled:
      ++counters_.flows_not_sampled;
      // Not ours to trace: its packets need not come through us at all.
      if (config_.skip_marks) set_skip(key, f, Skip::all);
      break;
    case Phase::watching:
      if (from == Phase::fresh) ++counters_.flows_watched;
      // Past the queue, its packets copied to us: it costs no verdict.
      if (config_.skip_marks) set_skip(key, f, Skip::watch);
      break;
    case Phase::waiting:
      ++counters_.flows_refused;
      admission_.wait(key);
      // Waiting in the queue would cost every one of its packets a trip
      // through us: it waits past the queue until its turn.
      if (config_.skip_marks) set_skip(key, f, Skip::all);
      break;
    case Phase::admitted:
      // Its packets passed us by while it waited: that was no idleness.
      f.last_seen = now.mono;
      if (passes_queue(f.skip) && from == Phase::waiting) ++counters_.flows_waited_past;
      set_skip(key, f, Skip::none);
      break;
    case Phase::tracing:
      admission_.start(from == Phase::admitted);
      if (f.params->mode == Mode::mangle) set_skip(key, f, mangle_skip());
      break;
    case Phase::resting:
      // Until its next round (if any), its packets need not come through us.
      if (config_.skip_marks && !stopped_) set_skip(key, f, Skip::all);
      break;
    case Phase::closing:
      if (from == Phase::admitted) admission_.give_up_kept();
      // Conntrack keeps a closed connection (and its mark) for minutes: a
      // new connection on the same ports would inherit the skip.
      set_skip(key, f, Skip::none);
      if (f.trace) f.trace->close();
      arm(key, f, FlowTimer::linger, now.mono + closed_linger);
      break;
  }
}

void Engine::maybe_start_round(const FlowKey& key, Flow& f, Instant now) {
  if (stopped_) return;
  switch (f.phase) {
    case Phase::fresh:
      if (!sampled(key)) {
        enter(key, f, Phase::unsampled, now);
        return;
      }
      if (config_.trigger == Trigger::retransmit) {
        enter(key, f, Phase::watching, now);
        return;
      }
      break;
    case Phase::resting:
      if (!f.round_due(now.mono)) return;
      if (config_.trigger == Trigger::retransmit) {
        enter(key, f, Phase::watching, now);
        return;
      }
      break;
    case Phase::watching:  // until it retransmits
      return;
    case Phase::waiting:
    case Phase::admitted:
      break;
    case Phase::unsampled:
    case Phase::tracing:
    case Phase::closing:
      return;
  }
  admit_waiting(now);  // who came earlier goes first
  if (f.phase == Phase::waiting) return;
  if (f.phase == Phase::admitted || admission_.has_room()) {
    start_round(key, f, now);
    return;
  }
  enter(key, f, Phase::waiting, now);
}

void Engine::start_round(const FlowKey& key, Flow& f, Instant now) {
  const TraceParams& p = *f.params;
  ++f.rounds;
  f.round_started = now.mono;
  f.packets_since_probe = p.packet_freq;  // the first chance is taken
  RoundStart from;
  if (memory_ && p.mode == Mode::dup) {
    from.memory = &*memory_;
    from.start_ttl = memory_->start_ttl(key.dst, now.mono);
    if (from.start_ttl) ++counters_.traces_from_stop_set;
  }
  from.seq_offset = f.seq_offset;
  from.known_distance = f.known_distance;
  from.silence_margin = f.silence_margin;
  // The probes' lengths in a secret order: a Fisher-Yates shuffle.
  for (std::size_t i = 0; i < probe_length_count; ++i)
    from.probe_lengths[i] = static_cast<std::uint8_t>(i + 1);
  for (std::size_t i = probe_length_count - 1; i > 0; --i)
    std::swap(from.probe_lengths[i],
              from.probe_lengths[random_.below(static_cast<std::uint32_t>(i + 1))]);
  f.trace = std::make_unique<Trace>(p, key, f.rounds, now, from);
  f.wave_short_of_data = false;
  ++counters_.traces_started;
  // Counted as it begins: a flow let in may close before its next packet.
  if (std::exchange(f.triggered, false)) ++counters_.traces_triggered;
  enter(key, f, Phase::tracing, now);
}

void Engine::admit_waiting(Instant now) {
  while (auto next = admission_.admit_next([this](const FlowKey& key) {
           auto it = flows_.find(key);
           return it != flows_.end() && it->second.phase == Phase::waiting;
         })) {
    enter(*next, flows_.find(*next)->second, Phase::admitted, now);
  }
}

void Engine::restart(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  const Flow& f = it->second;
  // A retransmitted SYN of the handshake we saw: the same connection, not
  // yet traced and still coming through the queue.
  const bool untraced = f.phase == Phase::fresh || f.phase == Phase::watching ||
                        f.phase == Phase::waiting || f.phase == Phase::admitted;
  if (f.rounds == 0 && untraced && !passes_queue(f.skip)) return;
  forget(key, now);
}

void Engine::close_flow(const FlowKey& key, Flow& f, Instant now) {
  if (f.phase == Phase::closing) return;
  enter(key, f, Phase::closing, now);
  settle(key, f, now);
}

// --- rounds -----------------------------------------------------------------

void Engine::take_replies(Trace& trace) {
  auto& replies = trace.new_replies();
  for (HopEvent& hop : replies) outputs_.push(std::move(hop));
  replies.clear();
}

void Engine::settle(const FlowKey& key, Flow& f, Instant now) {
  if (!f.trace) return;
  take_replies(*f.trace);
  const std::optional<StopReason> reason = f.trace->finished();
  if (!reason) {
    // Replies may have made a silence due sooner.
    if (auto next = f.trace->next_expiry()) arm_by(key, f, FlowTimer::probe_expiry, *next);
    skip_between_waves(key, f);
    return;
  }
  end_round(f, *reason, now);
  admit_waiting(now);
  if (f.phase == Phase::closing) {
    arm(key, f, FlowTimer::linger, std::max(now.mono, linger_end(f)));
    return;
  }
  enter(key, f, Phase::resting, now);
}

void Engine::end_round(Flow& f, StopReason reason, Instant now) {
  f.trace->end();
  f.trace->release_destination_replies();
  take_replies(*f.trace);
  TraceResult result = f.trace->result(reason, now);
  if (memory_) memory_->learn(result, now.mono);
  // What the round learned, for the flow's next ones.
  if (f.trace->seq_offset()) f.seq_offset = f.trace->seq_offset();
  if (result.reached) f.known_distance = result.hops.back().ttl;
  counters_.icmp_unconfirmed += f.trace->held_replies();
  std::optional<PathChange> change = f.history.add(result);
  result.loss_from_ttl = f.history.loss_from_ttl(result);
  result.return_hops = hops_travelled(f.peer_ttl);
  // Probes taken for silent may still be answered, late, till --timeout.
  const auto until = f.trace->last_expiry();
  if (until && now.mono < *until && reason != StopReason::stopped) {
    f.previous = std::move(f.trace);
    f.previous_until = *until;
  }
  f.trace.reset();
  f.timer(FlowTimer::probe_expiry).reset();
  outputs_.push(std::move(result));
  if (change) outputs_.push(std::move(*change));
  ++counters_.traces_ended;
  admission_.end();
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
  const bool needs_request =
      filter_.requested_only && !(filter_.forwarded_unasked && meta.forwarded);
  if ((ends_flow || needs_request) && !flows_.contains(key)) return verdict;

  Flow& f = find_or_create(key, now);
  const Duration gap = now.mono - f.last_seen;
  f.last_seen = now.mono;
  // The rules skip it again after this one packet (not after a SYN, FIN or
  // RST, which always come).
  if (f.skip == Skip::wave && !ends_flow && !packet.has(wire::tcp_flag::syn)) f.skip = Skip::replies;
  if (f.phase == Phase::closing) {  // the last packets of a closed connection
    f.close_gap = gap;
    return verdict;
  }
  if (packet.has(wire::tcp_flag::ack)) f.last_ack = packet.ack;
  if (note_sent(f, packet, now.mono) && f.phase == Phase::watching) trigger(key, f, now);
  const wire::Bytes payload = packet.payload();
  if (f.trace && f.params->mode == Mode::mangle && packet.payload_len > 0)
    f.trace->on_retransmission(packet.seq, packet.end_seq());
  f.packets_since_data = packet.payload_len > 0 ? 0 : f.packets_since_data + 1;
  if (payload.size() >= 2) {
    f.sent.seq = packet.seq;
    f.sent.len = static_cast<std::uint16_t>(std::min(payload.size(), f.sent.bytes.size()));
    std::copy_n(payload.begin(), f.sent.len, f.sent.bytes.begin());
  }
  if (ends_flow) {
    close_flow(key, f, now);
    return verdict;
  }
  if (packet.has(wire::tcp_flag::syn)) return verdict;  // never probe with a handshake

  maybe_start_round(key, f, now);
  if (!f.trace) return verdict;

  ++f.packets_since_probe;
  if (f.params->mode == Mode::dup) {
    probe_dup(key, f, packet, meta, now);
  } else {
    verdict.set_ttl = probe_mangle(key, f, packet, meta, now);
  }
  settle(key, f, now);
  return verdict;
}

void Engine::probe_dup(const FlowKey& key, Flow& f, const wire::TcpPacket& packet,
                       const PacketMeta& meta, Instant now) {
  wanted_.clear();
  f.trace->wanted_ttls(wanted_);
  if (wanted_.empty()) return;

  // The bytes the probes copy: this packet's own payload, else the last data
  // the flow sent. A flow that never sent data (a download) gets probes just
  // below its sequence number: sequence space the peer has long
  // acknowledged (the SYN's, then before it), which carried no data a
  // duplicate could contradict. (Below the sequence number of a flow that
  // did send data, bytes may still be in flight: there only true copies of
  // them go.) The peer answers any duplicate at once, with a D-SACK naming
  // it, where a copy of a bare ACK would get no answer.
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
  std::optional<std::uint32_t> acked;
  if (f.sent.len == 0 && packet.payload_len == 0) acked = packet.seq;

  // Within the --pps budget: lowest TTLs first, the rest with later packets.
  const std::size_t granted = budget_.take(wanted_.size(), now.mono);
  counters_.probes_deferred += wanted_.size() - granted;
  wanted_.resize(granted);
  if (wanted_.empty()) return;

  const TraceParams& params = *f.params;
  const std::uint32_t header_len = packet.tcp_header_len;
  ProbeLayout layout(*f.trace, random_, source, source_seq, acked);
  std::optional<std::uint32_t> tsval;
  if (auto ts = wire::parse_timestamps(packet.options())) tsval = f.clock.newer_than(ts->val);
  std::size_t sent_now = 0;
  ProbePacket out;
  out.out_ifindex = meta.out_ifindex;
  f.wave_short_of_data = false;
  for (std::uint8_t ttl : wanted_) {
    const auto placed = layout.next(wanted_.size() - sent_now);
    if (!placed) {  // the rest waits for the next packets
      f.wave_short_of_data = true;
      break;
    }
    wire::ProbeFields fields;
    fields.ttl = ttl;
    fields.ip_id = packet.family == wire::Family::v4 ? random_.ip_id() : 0;
    fields.seq = placed->seq;
    fields.payload = placed->payload;
    // RFC 3168 6.1.5: a copy that may reach the peer is not ECN-capable;
    // below the destination it keeps the connection's codepoint, so that a
    // device clearing it shows in the quotes.
    fields.clear_ecn = !(ttl < f.trace->known_distance());
    fields.tsval = tsval;
    const std::size_t size = wire::build_probe(packet, fields, out.bytes);
    auto built = wire::parse_tcp_packet(wire::Bytes(out.bytes.data(), size),
                                        static_cast<std::uint32_t>(size));
    if (size == 0 || !built) {
      ++counters_.probes_unbuildable;
      break;
    }
    out.size = static_cast<std::uint16_t>(size);
    wave_.push_back(out);
    Probe p;
    p.id = ProbeIdentity{fields.seq,
                         header_len + static_cast<std::uint32_t>(fields.payload.size()),
                         fields.ip_id};
    p.payload_len = static_cast<std::uint32_t>(fields.payload.size());
    p.ttl = ttl;
    p.sent = now.mono;
    p.expires = now.mono + params.timeout;
    p.header = sent_header_of(*built);
    f.trace->add_probe(p);
    ++sent_now;
  }
  // The skip mark before the wave: the flow's next packets pass the queue by
  // while the probes go out (sending a wave takes longer than the gap
  // between two packets of a fast flow).
  skip_between_waves(key, f);
  // Highest TTL first. A busy Linux peer keeps one D-SACK pending, which the
  // next duplicate replaces (tcp_dsack_set): of a wave's duplicates, the one
  // it takes last is the one most likely named, and in this order that is
  // the lowest TTL that reached it, the destination's distance.
  for (auto probe = wave_.rbegin(); probe != wave_.rend(); ++probe) outputs_.push(*probe);
  wave_.clear();
  budget_.give_back(granted - sent_now);
  if (sent_now > 0) {
    counters_.probes_sent += sent_now;
    ++counters_.waves;
    f.packets_since_probe = 0;
    arm_by(key, f, FlowTimer::probe_expiry, now.mono + params.timeout);
  }
}

std::optional<std::uint8_t> Engine::probe_mangle(const FlowKey& key, Flow& f,
                                                 const wire::TcpPacket& packet,
                                                 const PacketMeta& meta, Instant now) {
  const TraceParams& params = *f.params;
  if (f.packets_since_probe < params.packet_freq) return std::nullopt;
  // A bare ACK that reaches the peer leaves no trace of it (nothing is
  // acknowledged), so the TTL would look silent: probe with data while the
  // flow sends any. A flow that only ACKs is probed with its ACKs: its
  // routers answer, its destination stays unconfirmed.
  if (packet.payload_len == 0 && f.packets_since_data < ack_only_after) return std::nullopt;
  // The verdict must carry the whole packet: only what was captured whole,
  // never a GSO super-packet (its loss would cost dozens of segments), and
  // never a copy (sent before its mark asked for the queue).
  if (meta.gso || meta.copied || packet.captured.size() < std::size_t{packet.ip_header_len} +
                                               packet.tcp_header_len + packet.payload_len)
    return std::nullopt;
  wanted_.clear();
  f.trace->wanted_ttls(wanted_);
  if (wanted_.empty()) return std::nullopt;
  const ProbeIdentity id{packet.seq, std::uint32_t{packet.tcp_header_len} + packet.payload_len,
                         packet.family == wire::Family::v4 ? packet.ip_id : std::uint16_t{0}};
  if (f.trace->identity_in_use(id)) return std::nullopt;  // a reply could not tell them apart
  if (budget_.take(1, now.mono) == 0) {
    ++counters_.probes_deferred;
    return std::nullopt;
  }

  Probe p;
  p.id = id;
  p.payload_len = packet.payload_len;
  p.ttl = wanted_.front();
  p.sent = now.mono;
  p.expires = now.mono + params.timeout;
  p.header = sent_header_of(packet);
  f.trace->add_probe(p);
  f.packets_since_probe = 0;
  ++counters_.packets_mangled;
  ++counters_.probes_sent;
  arm_by(key, f, FlowTimer::probe_expiry, p.expires);
  return p.ttl;
}

// --- other events -------------------------------------------------------------

void Engine::request_trace(const FlowKey& key, const TraceParams& params, Instant now) {
  if (stopped_) return;
  Flow& f = find_or_create(key, now);
  f.params = std::make_shared<const TraceParams>(params.sanitized());
}

void Engine::forget(const FlowKey& key, Instant now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  Flow& f = it->second;
  // A mark left behind would keep a new connection on these ports untraced.
  set_skip(key, f, Skip::none);
  if (f.phase == Phase::admitted) admission_.give_up_kept();
  const bool ran = f.trace != nullptr;
  // Probes may still be out: the round ends now all the same.
  if (ran) end_round(f, f.trace->finished().value_or(StopReason::closed), now);
  flows_.erase(it);  // a waiting flow's place in line is skipped when reached
  if (ran) admit_waiting(now);
}

void Engine::on_peer_packet(const wire::TcpPacket& packet, Instant at) {
  ++counters_.peer_packets;
  const FlowKey key = outgoing_key(packet).reversed();
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  Flow& f = it->second;
  if (f.phase == Phase::closing) {
    // The connection is over, but a round still running waits for the
    // answers to probes already out: the peer's D-SACKs are among them.
    // (Not its ACKs as mangle mode reads them: a mangled original resent
    // after the close is not seen resent, and would pass for delivered.)
    take_peer_sacks(f, packet, at);
    if (f.trace) {
      // The peer's RST for a probe that reached its closed socket carries
      // the probe's ACK number (copied, maybe older than our last): near
      // ours, on either side.
      if (packet.has(wire::tcp_flag::rst) && f.last_ack &&
          std::min(packet.seq - *f.last_ack, *f.last_ack - packet.seq) < peer_rst_window)
        f.trace->peer_gone();
      settle(key, f, at);
    }
    return;
  }
  f.last_seen = at.mono;
  f.peer_ttl = packet.ttl;
  if (auto ts = wire::parse_timestamps(packet.options())) f.clock.on_echo(ts->ecr, at.mono);
  take_peer_sacks(f, packet, at);
  if (f.trace) {
    if (packet.has(wire::tcp_flag::ack) && f.trace->on_peer_ack(packet.ack, packet.src, at, packet.ttl))
      ++counters_.peer_evidence;
  }
  // A FIN from the peer ends only its half: the flow may go on sending (and
  // be traced) until it closes its own side, which we see.
  if (packet.has(wire::tcp_flag::rst)) {
    if (f.last_ack && packet.seq - *f.last_ack < peer_rst_window) {
      if (f.trace) f.trace->peer_gone();
      close_flow(key, f, at);
      return;
    }
    ++counters_.peer_resets_rejected;
  }
  settle(key, f, at);
}

void Engine::take_peer_sacks(Flow& f, const wire::TcpPacket& packet, Instant at) {
  // The last round's probes taken for silent still wait for a late D-SACK
  // until their --timeout, as for a late ICMP reply.
  if (f.previous && f.previous_until <= at.mono) f.previous.reset();
  if (!f.trace && !f.previous) return;
  const wire::SackBlocks sacks = wire::parse_sack(packet.options());
  for (std::uint8_t i = 0; i < sacks.count; ++i) {
    const auto& [left, right] = sacks.blocks[i];
    if (f.trace && f.trace->on_peer_sack(left, right, packet.src, at, packet.ttl)) {
      ++counters_.peer_evidence;
    } else if (f.previous && f.previous->on_peer_sack(left, right, packet.src, at, packet.ttl)) {
      ++counters_.peer_evidence;
      late_reply(f, counters_.peer_late);
    }
  }
}

void Engine::on_logged(const wire::TcpPacket& packet, Instant at) {
  const FlowKey key = outgoing_key(packet);
  if (flows_.contains(key.reversed())) {
    on_peer_packet(packet, at);
    return;
  }
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  Flow& f = it->second;
  ++counters_.packets_logged;
  if (f.phase == Phase::closing) return;
  f.last_seen = at.mono;
  if (note_sent(f, packet, at.mono) && f.phase == Phase::watching) trigger(key, f, at);
}

bool Engine::on_icmp(const wire::IcmpError& error, Instant at) {
  const wire::QuotedTcp& q = error.quote;
  auto it = flows_.find(FlowKey{q.src, q.dst, q.sport, q.dport});
  if (it == flows_.end()) {
    ++counters_.icmp_no_flow;
    return false;
  }
  Flow& f = it->second;
  // The last round's probes taken for silent still wait for a late reply
  // until their --timeout.
  if (f.previous && f.previous_until <= at.mono) f.previous.reset();
  if (!f.trace && !f.previous) {
    ++counters_.icmp_no_trace;
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
  if (!error.extensions.empty()) {
    if (auto mpls = wire::parse_mpls_extension(error.extensions)) {
      reply.mpls.assign(mpls->entries, mpls->entries + mpls->count);
    } else {
      ++counters_.icmp_bad_extensions;
    }
  }
  IcmpMatch match = IcmpMatch::no_probe;
  if (f.trace) match = f.trace->on_icmp(q, reply);
  if (match == IcmpMatch::no_probe && f.previous) {
    match = f.previous->on_icmp(q, reply);
    if (match == IcmpMatch::matched) late_reply(f, counters_.icmp_late);
  }
  bool ours = true;
  switch (match) {
    case IcmpMatch::matched:
      ++counters_.icmp_matched;
      if (f.trace) counters_.icmp_matched += f.trace->take_confirmed_earlier();
      break;
    case IcmpMatch::pending:
      ++counters_.icmp_held;
      // Held for a shift not yet confirmed: a time-exceeded quoting the
      // flow with its probes' length (and IPv4 ID) is ours; the
      // connection's own packets never expire on the way.
      ours = error.kind == wire::IcmpKind::time_exceeded;
      break;
    case IcmpMatch::no_probe:
      ++counters_.icmp_no_probe;
      ours = false;
      break;
    case IcmpMatch::repeated: ++counters_.icmp_repeated; break;
  }
  settle(it->first, f, at);
  return ours;
}

void Engine::late_reply(Flow& f, std::uint64_t& late_count) {
  // Its round is over: the reply goes out on its own, marked late, and the
  // flow's later rounds wait long enough for such a router (or peer).
  for (const HopEvent& hop : f.previous->new_replies()) {
    ++late_count;
    f.silence_margin = std::max(f.silence_margin, hop.reply.rtt + hop.reply.rtt / 2);
  }
  take_replies(*f.previous);
}

void Engine::handle(const SkipApplied& applied, Instant now) {
  const SkipChange& change = applied.change;
  // A cleared mark needs nothing more, done or not: the flow was leaving
  // the skip (and may be gone, or a new connection on the same ports).
  if (change.skip == Skip::none) return;
  auto it = flows_.find(change.flow);
  if (it == flows_.end() || it->second.skip == Skip::none) return;
  Flow& f = it->second;
  if (applied.connection_gone) {
    f.skip = Skip::none;  // no mark left to clear
    forget(change.flow, now);
    return;
  }
  if (!applied.ok) {
    // The packets keep coming: the flow stays where it is in its life (a
    // watching flow sees its retransmissions in the queue).
    f.skip = Skip::none;
    return;
  }
  if (change.recheck || change.skip != Skip::all || f.phase == Phase::waiting) return;
  ++counters_.flows_skipped;
  // Without a next round the state stays until the flow has been idle a
  // while: packets queued before the mark took effect still arrive, and must
  // find the flow done rather than start it afresh.
  if (f.phase == Phase::resting && f.params->repeat)
    arm(change.flow, f, FlowTimer::next_round, f.round_started + *f.params->repeat);
}

void Engine::stop(Instant now) {
  stopped_ = true;
  for (auto& [key, f] : flows_) {
    if (f.trace) end_round(f, StopReason::stopped, now);
  }
  admission_.clear();
  flows_.clear();
  timers_ = {};
}

}  // namespace nfqtrace::core
