#include "nfqtrace/runtime/tracer.hpp"

#include <array>
#include <variant>

#include "nfqtrace/sys/clock.hpp"
#include "nfqtrace/sys/conntrack.hpp"
#include "nfqtrace/sys/nflog.hpp"
#include "nfqtrace/sys/raw_sockets.hpp"
#include "nfqtrace/sys/rule_keeper.hpp"
#include "nfqtrace/wire/icmp_error.hpp"
#include "nfqtrace/wire/probe_builder.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::runtime {

namespace {

// Clears every mark bit of ours, in every connection that has --mark's or
// the two bits of a queued flow (Skip::queued); how many connections had one.
std::size_t clear_marks(sys::ConntrackMarker& marker, const TracerOptions& options) {
  const std::uint32_t below = options.watch_mark | options.round_mark;
  auto n = marker.clear_everywhere(options.probe_mark, below);
  auto queued = below != 0 ? marker.clear_everywhere(below, 0) : sys::Result<std::size_t>(0);
  return (n ? *n : 0) + (queued ? *queued : 0);
}

}  // namespace

struct Tracer::Impl {
  Impl(const TracerOptions& o, ResultSink& s, sys::NfQueue q, sys::NfLog l, sys::ProbeSender p,
       std::optional<sys::IcmpReceiver> i4, std::optional<sys::IcmpReceiver> i6)
      : options(o),
        sink(s),
        engine(o.engine, o.filter),
        queue(std::move(q)),
        log(std::move(l)),
        sender(std::move(p)),
        icmp4(std::move(i4)),
        icmp6(std::move(i6)) {}

  TracerOptions options;
  ResultSink& sink;
  core::Engine engine;
  sys::NfQueue queue;
  sys::NfLog log;
  sys::ProbeSender sender;
  // Without our rules (the queue then sees no ICMP): raw ICMP sockets.
  std::optional<sys::IcmpReceiver> icmp4;
  std::optional<sys::IcmpReceiver> icmp6;
  std::optional<sys::Rules> rules;
  std::optional<sys::RuleKeeper> keeper;  // removes the rules when we end
  std::optional<sys::ConntrackMarker> conntrack;  // when flows may skip the queue
  sys::EventLoop* loop = nullptr;
  RuntimeCounters counters;
  std::uint64_t traces_reported = 0;
  std::optional<sys::Error> fatal;
  bool shut_down = false;
  bool draining = false;
  // A mangled packet is rewritten here; the queue gave it to us whole.
  std::array<std::uint8_t, 65536> mangle_buffer{};

  void on_queue_readable() {
    if (!drain_queue()) return;
    // Verdicts first: the connection never waits for us, and a duplicate
    // leaves after its original.
    if (auto s = queue.flush_verdicts(); !s) return fail(s.error());
    after_event();
  }

  void on_queued(const sys::QueuedPacket& qp, core::Instant now) {
    ++counters.queue_packets;
    // An ICMP error (addressed to us, or with --forward to the inner host:
    // then it has an output device too), else one of our TCP packets.
    auto icmp = wire::parse_icmp_packet(qp.data, qp.wire_len);
    if (icmp) return on_queued_icmp(qp, *icmp);
    if (icmp.error() != wire::ParseError::not_icmp_error) {
      counters.icmp_unreadable.add(icmp.error());
      queue.accept(qp.id);
      return;
    }
    auto packet = wire::parse_tcp_packet(qp.data, qp.wire_len);
    if (!packet) {
      counters.queue_unreadable.add(packet.error());
      queue.accept(qp.id);
      return;
    }
    const core::PacketMeta meta{qp.out_ifindex, qp.gso, false, qp.in_ifindex != 0};
    const core::Verdict verdict = engine.on_outgoing(*packet, meta, now);
    if (verdict.set_ttl && qp.data.size() <= mangle_buffer.size()) {
      std::copy(qp.data.begin(), qp.data.end(), mangle_buffer.begin());
      wire::MutableBytes whole(mangle_buffer.data(), qp.data.size());
      // A replaced packet counts as fully checksummed: finish an offloaded one.
      const bool checksum_ok = !qp.checksum_not_ready || wire::complete_tcp_checksum(whole);
      if (checksum_ok && wire::set_ttl(whole, *verdict.set_ttl) &&
          queue.accept_modified(qp.id, whole))
        return;
      ++counters.verdict_errors;
    }
    queue.accept(qp.id);
  }

  // Every packet waiting in the queue, with its verdict, now. False when the
  // queue failed (the tracer stops).
  bool drain_queue() {
    const core::Instant now = sys::now();
    auto read = queue.receive([&](const sys::QueuedPacket& qp) { on_queued(qp, now); });
    if (!read) fail(read.error());
    return read.has_value();
  }

  // A copy of an outgoing packet (dup mode): the engine sees it as it would
  // a queued one, only its verdict was given long ago (dup mode never
  // changes the packet). Probes sent from it are stamped now, when they go.
  void on_copied(const sys::LoggedPacket& lp, const wire::Parsed<wire::TcpPacket>& packet,
                 core::Instant now) {
    ++counters.copied_packets;
    if (!packet) {
      counters.copy_unreadable.add(packet.error());
      return;
    }
    (void)engine.on_outgoing(*packet, core::PacketMeta{lp.out_ifindex, false, true, lp.in_ifindex != 0},
                             now);
  }

  // An ICMP error that answers a probe is ours alone: dropped here, the
  // connection's TCP never takes it for a soft error of its own (nor, with
  // IP_RECVERR, hands it to the application). Anything else goes on.
  void on_queued_icmp(const sys::QueuedPacket& qp, const wire::IcmpError& error) {
    if (engine.on_icmp(error, sys::arrival_time(qp))) {
      if (queue.drop(qp.id)) {
        ++counters.icmp_withheld;
        return;
      }
      ++counters.verdict_errors;
    }
    queue.accept(qp.id);
  }

  void on_log_readable() {
    const core::Instant now = sys::now();
    auto read = log.receive([&](const sys::LoggedPacket& lp) {
      auto packet = wire::parse_tcp_packet(lp.data, lp.wire_len);
      if (lp.outgoing) return on_copied(lp, packet, now);
      if (!packet) {
        counters.peer_unreadable.add(packet.error());
        return;
      }
      engine.on_logged(*packet, lp.at);
    });
    counters.log_copies_lost = log.lost();
    if (!read) return fail(read.error());
    after_event();
  }

  void on_icmp_readable(sys::IcmpReceiver& receiver) {
    auto read = receiver.receive([&](const sys::IcmpDatagram& d) {
      auto error = d.family == wire::Family::v4
                       ? wire::parse_icmp4(d.data)
                       : wire::parse_icmp6(d.data, d.from, d.to, d.hop_limit);
      if (!error) {
        counters.icmp_unreadable.add(error.error());
        return;
      }
      engine.on_icmp(*error, d.at);
    });
    if (!read) return fail(read.error());
    after_event();
  }

  void on_deadline() {
    engine.on_timer(sys::now());
    after_event();
  }

  // Acts on what the engine decided, in the order it decided it, re-arms
  // the timer, stops when done. A sink that calls back into the tracer
  // (request_trace, forget) adds to the same stream, which the loop below
  // goes on draining.
  void after_event() {
    if (!draining) {
      draining = true;
      while (auto output = engine.poll()) std::visit([this](auto& o) { act(o); }, *output);
      draining = false;
    }
    if (loop) {
      if (auto s = loop->set_deadline(engine.poll_timeout()); !s) return fail(s.error());
      if (done()) loop->stop();
    }
  }

  void act(const core::ProbePacket& p) {
    if (shut_down) return;  // nothing goes out once we stop
    if (!sender.send(p.view(), p.out_ifindex)) ++counters.probe_send_errors;
  }
  void act(const core::HopEvent& hop) { sink.on_hop(hop); }
  void act(const core::TraceResult& trace) {
    sink.on_trace(trace);
    ++traces_reported;
  }
  void act(const core::PathChange& change) { sink.on_path_change(change); }
  // Flows with no trace running leave the queue (a conntrack mark our rules
  // match first), and come back for their next round.
  void act(const core::SkipChange& change) {
    sys::Status s = conntrack ? conntrack->set_mark(change.flow, mark_of(change.skip), all_marks())
                              : sys::Status(sys::Error{"no conntrack"});
    // The flow's packets queued since the last read must leave before the
    // ones that now pass the queue by, or the connection's packets leave out
    // of order: read them at once, before the wave's probes go out.
    if (s.ok() && !change.recheck && leaves_queue(change.skip)) (void)drain_queue();
    engine.handle(core::SkipApplied{change, s.ok(), !s.ok() && s.error().code == ENOENT},
                  sys::now());
  }

  // Whether a flow whose mark now says `skip` is no longer queued by our
  // rules (it may have been until now).
  bool leaves_queue(core::Skip skip) const {
    if (options.rules && options.rules->queue_by_mark) return skip != core::Skip::queued;
    // The rules copy every connection's packets: none is ever queued.
    if (options.rules && options.rules->copy_outgoing) return false;
    return core::passes_queue(skip);
  }

  // Every mark bit of ours, and what a flow's mark is for each way it skips.
  std::uint32_t all_marks() const {
    return options.probe_mark | options.watch_mark | options.round_mark;
  }
  std::uint32_t mark_of(core::Skip skip) const {
    switch (skip) {
      case core::Skip::none: return 0;
      // Not a skip: our rules queue it rather than copy it.
      case core::Skip::queued: return options.watch_mark | options.round_mark;
      case core::Skip::all: return options.probe_mark;
      case core::Skip::watch: return options.probe_mark | options.watch_mark;
      case core::Skip::replies: return options.probe_mark | options.round_mark;
      // Our rules copy its next packet, then set it to `replies` themselves.
      case core::Skip::wave: return options.probe_mark | options.watch_mark | options.round_mark;
    }
    return 0;
  }

  bool done() const {
    return options.stop_after_traces && traces_reported >= *options.stop_after_traces;
  }

  void fail(const sys::Error& e) {
    if (!fatal) fatal = e;
    if (loop) loop->stop();
  }
};

sys::Result<std::unique_ptr<Tracer>> Tracer::create(const TracerOptions& options,
                                                    ResultSink& sink) {
  // The keeper first, holding nothing of ours but its pipe.
  std::optional<sys::RuleKeeper> keeper;
  if (options.rules && options.rule_keeper) {
    auto k = sys::RuleKeeper::start(options.queue.queue_id);
    if (!k) return k.error();
    keeper.emplace(std::move(*k));
  }
  sys::QueueOptions queue_options = options.queue;
  // Mangle mode hands whole packets back with the verdict, and lowers the
  // TTL of single segments: the kernel segments GSO packets before queueing
  // them, so an expiring probe costs the connection one segment, not 64 KiB.
  if (options.engine.trace.mode == core::Mode::mangle) {
    queue_options.copy_range = 0xffff;
    queue_options.gso = false;
  }
  // Binding the queue first: it fails when another instance holds it, and
  // then that instance's rules must stay untouched.
  auto queue = sys::NfQueue::open(queue_options);
  if (!queue) return queue.error();
  // Bound, no live instance uses this queue id: rules with it are leftovers
  // of a run that was killed, feeding a queue nobody read.
  if (options.rules) {
    if (auto s = sys::Rules::remove_leftovers(options.queue.queue_id); !s) return s.error();
  }
  auto log = sys::NfLog::open(options.nflog_group, sys::outgoing_copy_bytes);
  if (!log) return log.error();
  auto sender = sys::ProbeSender::open(options.probe_mark);
  if (!sender) return sender.error();
  // With our rules the queue hands us the ICMP errors; without, raw sockets.
  std::optional<sys::IcmpReceiver> icmp4, icmp6;
  if (!options.rules) {
    auto r4 = sys::IcmpReceiver::open(wire::Family::v4);
    if (!r4) return r4.error();
    icmp4.emplace(std::move(*r4));
    if (auto r6 = sys::IcmpReceiver::open(wire::Family::v6)) icmp6.emplace(std::move(*r6));
  }

  // With our own rules, a flow whose trace is over skips the queue: its
  // connection gets the mark bits in conntrack, which the rules match first.
  TracerOptions effective = options;
  std::optional<sys::ConntrackMarker> conntrack;
  std::uint64_t stale_marks = 0;
  if (effective.rules) {
    sys::RuleSpec& rules = *effective.rules;
    rules.queue_icmp = true;
    if (auto m = sys::ConntrackMarker::open()) {
      // Marks an earlier run left (killed before it could clear them) would
      // keep their connections from ever being traced.
      stale_marks = clear_marks(*m, options);
      conntrack.emplace(std::move(*m));
      effective.engine.skip_marks = true;
      rules.bypass_mark = options.probe_mark;
      rules.watch_mark = options.watch_mark;
      rules.round_mark = options.round_mark;
    }
    // Dup mode copies the connection's packets to us rather than queue
    // them; mangle mode sends the packets themselves, queued. Where flows
    // choose their mode, a flow in mangle mode asks for the queue by its
    // mark; without marks, every flow is queued.
    const bool by_mark = options.flows_may_mangle && conntrack && rules.watch_mark != 0 &&
                         rules.round_mark != 0;
    rules.copy_outgoing = by_mark || (options.engine.trace.mode == core::Mode::dup &&
                                      !options.flows_may_mangle);
    rules.queue_by_mark = by_mark;
    effective.engine.queue_by_mark = by_mark;
    effective.engine.one_copy_waves = conntrack && sys::one_copy_waves(rules);
  }
  auto impl = std::make_unique<Impl>(effective, sink, std::move(*queue), std::move(*log),
                                     std::move(*sender), std::move(icmp4), std::move(icmp6));
  impl->conntrack = std::move(conntrack);
  impl->counters.stale_marks_cleared = stale_marks;
  if (effective.rules) {
    auto rules = sys::Rules::install(*effective.rules);
    if (!rules) return rules.error();
    impl->rules.emplace(std::move(*rules));
    if (keeper) {
      if (auto s = keeper->arm(); !s) return s.error();
      impl->keeper.emplace(std::move(*keeper));
    }
  }
  return std::unique_ptr<Tracer>(new Tracer(std::move(impl)));
}

Tracer::Tracer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Tracer::~Tracer() {
  if (impl_ && !impl_->shut_down) (void)shutdown();
}

sys::Status Tracer::attach(sys::EventLoop& loop) {
  Impl& i = *impl_;
  i.loop = &loop;
  if (auto s = loop.watch(i.queue.fd(), [&i] { i.on_queue_readable(); }); !s) return s;
  if (auto s = loop.watch(i.log.fd(), [&i] { i.on_log_readable(); }); !s) return s;
  if (i.icmp4) {
    if (auto s = loop.watch(i.icmp4->fd(), [&i] { i.on_icmp_readable(*i.icmp4); }); !s) return s;
  }
  if (i.icmp6) {
    if (auto s = loop.watch(i.icmp6->fd(), [&i] { i.on_icmp_readable(*i.icmp6); }); !s) return s;
  }
  loop.on_deadline([&i] { i.on_deadline(); });
  return Ok{};
}

sys::Status Tracer::shutdown() {
  Impl& i = *impl_;
  if (i.shut_down) return Ok{};
  i.shut_down = true;
  // Rules first, so nothing new is queued; then the packets already queued
  // get their verdicts before the queue closes (closing would drop them).
  sys::Status removed = Ok{};
  if (i.rules && i.keeper) {
    i.rules->release();
    // It has kept the privileges to remove them, and to read their counters.
    removed = i.keeper->finish();
  } else if (i.rules) {
    removed = i.rules->remove();
  }
  (void)i.queue.receive([&i](const sys::QueuedPacket& qp) { i.queue.accept(qp.id); });
  (void)i.queue.flush_verdicts();
  i.engine.stop(sys::now());
  i.loop = nullptr;
  i.after_event();
  // Our rules are gone, but a later run's would match the marks of the
  // flows that were skipping: clear them.
  if (i.conntrack) (void)clear_marks(*i.conntrack, i.options);
  return removed;
}

void Tracer::request_trace(const core::FlowKey& flow, const core::TraceParams& params) {
  impl_->engine.request_trace(flow, params, sys::now());
  impl_->after_event();
}

void Tracer::forget(const core::FlowKey& flow) {
  impl_->engine.forget(flow, sys::now());
  impl_->after_event();
}

bool Tracer::done() const { return impl_->done(); }
const std::optional<sys::Error>& Tracer::fatal() const { return impl_->fatal; }
const core::EngineCounters& Tracer::engine_counters() const { return impl_->engine.counters(); }
const RuntimeCounters& Tracer::counters() const { return impl_->counters; }
std::uint64_t Tracer::traces_reported() const { return impl_->traces_reported; }
core::Engine::FlowCounts Tracer::flow_counts() const { return impl_->engine.flow_counts(); }

}  // namespace nfqtrace::runtime
