// A simulated path for engine tests: routers at TTL 1..n-1 and the peer at
// distance n. Each probe the engine emits becomes, after a per-hop delay,
// an ICMP time-exceeded from the router where it expired (unless that router
// is silent) or, when it reaches the peer, the peer's D-SACK naming it.
//
// Several Networks may share one engine (one per flow): what the engine
// decides goes to the Network of its flow, and the skip changes wait for the
// test to answer them (pending_skips, answer_skip).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "nfqtrace/base/overloaded.hpp"
#include "nfqtrace/core/engine.hpp"
#include "packets.hpp"

namespace sim {

using namespace std::chrono_literals;
using nfqtrace::core::Duration;
using nfqtrace::core::Instant;
namespace core = nfqtrace::core;
namespace wire = nfqtrace::wire;

inline Instant at(Duration t) { return Instant{t, t + 1'700'000'000s}; }

struct Path {
  std::vector<std::string> routers;  // TTL 1.. (the peer comes after them)
  std::set<int> silent;              // TTLs whose router never answers
  bool peer_answers = true;          // the peer sends D-SACKs for duplicates
  // A busy Linux peer, its ACK deferred while the application holds the
  // socket: one D-SACK pending, which each duplicate replaces
  // (tcp_dsack_set), so of duplicates arriving together (a wave) its one
  // ACK names the last.
  bool peer_names_last_duplicate_only = false;
  // Duplicates (numbered from 1 as they reach the peer) whose D-SACK a data
  // segment, taken before the ACK left, cleared (tcp_data_queue): never named.
  std::set<int> dsacks_cleared;
  // Duplicates (numbered so) whose D-SACK comes this much later: a busy
  // host, its network processing deferred, or the tracer not scheduled.
  std::map<int, Duration> slow_dsacks;
  Duration per_hop = 1ms;            // one-way delay per hop; RTT = 2 * ttl * per_hop
  std::size_t quote_bytes = 8;       // TCP bytes routers quote
  // Devices on the way: what the one after hop k does to each packet it
  // passes (the routers beyond and the peer see it so; the peer's answers
  // are translated back, as such devices do).
  std::map<int, std::function<void(testpkt::Buf&)>> rewrite_after;
  std::map<int, std::vector<testpkt::Label>> mpls_at;  // routers reporting a label stack
  std::map<int, Duration> slow_icmp;  // routers whose ICMP comes this much later
  std::map<int, int> icmp_budget;     // routers answering only this many probes (rate limiting)
  // Beyond hop `lossy_after`, each exchange is lost with this probability.
  int lossy_after = 0;
  double loss = 0;
  unsigned seed = 7;  // of the losses
  int distance() const { return static_cast<int>(routers.size()) + 1; }
};

struct Pending {
  Duration when;
  testpkt::Buf bytes;
  bool icmp = true;    // else a peer packet
  std::string router;  // IPv6 ICMP: the sender (not in the message itself)
  bool dsack = false;  // the peer's ACK naming a duplicate
};

class Network;

// The networks of one engine's flows, its skip changes not yet answered,
// and the kind of every decision it made, in order ("probe", "hop",
// "trace", "skip", "unskip").
struct Fabric {
  std::vector<Network*> networks;
  std::vector<core::SkipChange> skip_changes;
  std::vector<std::string> decided;
  // Flows skipping between the waves of a round: those changes, and the one
  // bringing a flow back for its next wave, the runtime applies as asked
  // (the engine needs no answer); the tests see them in `decided` only.
  std::set<core::FlowKey> between_waves;
  std::map<core::FlowKey, core::Skip> marks;  // each flow's last skip asked for
};
inline std::map<const core::Engine*, Fabric>& fabrics() {
  static std::map<const core::Engine*, Fabric> all;
  return all;
}

inline core::FlowKey key_of(const testpkt::Tcp& t) {
  return core::FlowKey{testpkt::addr(t.src), testpkt::addr(t.dst), t.sport, t.dport};
}

// Takes every decision the engine made so far, in order, to the network of
// its flow; the engine must never have made an illegal transition.
inline void drain(core::Engine& engine);

// The kind of every decision the engine made so far, in order.
inline const std::vector<std::string>& decided(core::Engine& engine) {
  drain(engine);
  return fabrics()[&engine].decided;
}

// Skip changes the engine asked for and the test has not answered.
inline std::vector<core::SkipChange>& pending_skips(core::Engine& engine) {
  drain(engine);
  return fabrics()[&engine].skip_changes;
}

class Network {
 public:
  Network(core::Engine& engine, Path path, testpkt::Tcp flow)
      : engine_(engine), path_(std::move(path)), flow_(std::move(flow)) {
    fabrics()[&engine_].networks.push_back(this);
  }
  ~Network() {
    auto& fabric = fabrics()[&engine_];
    std::erase(fabric.networks, this);
    if (fabric.networks.empty()) fabrics().erase(&engine_);
  }
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  Duration now() const { return now_; }
  testpkt::Tcp& flow() { return flow_; }
  Path& path() { return path_; }  // a route may change mid-connection

  // The connection sends a packet: the engine gives its verdict and probes.
  core::Verdict send(const testpkt::Tcp& t) {
    testpkt::Buf b = testpkt::ip_packet(t);
    auto p = wire::parse_tcp_packet(wire::Bytes(b), static_cast<std::uint32_t>(b.size()));
    EXPECT_TRUE(p);
    core::PacketMeta meta;
    meta.copied = copies_unless_queued && fabrics()[&engine_].marks[key()] != core::Skip::queued;
    meta.forwarded = forwarded;
    core::Verdict v = engine_.on_outgoing(*p, meta, at(now_));
    EXPECT_FALSE(v.set_ttl && meta.copied) << "a verdict for a copy: its packet has left";
    if (v.set_ttl) {
      mangled_.push_back(*v.set_ttl);
      testpkt::Buf m = b;
      wire::set_ttl(wire::MutableBytes(m), *v.set_ttl);
      route(m, /*is_probe=*/false);
    }
    collect();
    return v;
  }

  // The connection sends a packet that skips the queue: the engine sees only
  // the copy the log rule of a watched connection makes (no verdict).
  void send_past_queue(const testpkt::Tcp& t) {
    testpkt::Buf b = testpkt::ip_packet(t);
    auto p = wire::parse_tcp_packet(wire::Bytes(b), static_cast<std::uint32_t>(b.size()));
    EXPECT_TRUE(p);
    engine_.on_logged(*p, at(now_));
    route(b, /*is_probe=*/false);
    collect();
  }

  // Sends data packets of `size` bytes, `gap` apart, for `count` packets.
  void stream(int count, Duration gap, std::size_t size = 200) {
    for (int i = 0; i < count; ++i) {
      testpkt::Tcp t = flow_;
      t.payload.assign(size, static_cast<std::uint8_t>('x' + i % 3));
      for (std::size_t k = 0; k < size; ++k) t.payload[k] = static_cast<std::uint8_t>(k * 7 + static_cast<std::size_t>(i));
      send(t);
      flow_.seq += static_cast<std::uint32_t>(size);
      flow_.ip_id++;
      advance(gap);
    }
  }

  // Lets time pass, delivering what is due and firing the engine's timer.
  void advance(Duration d) {
    const Duration end = now_ + d;
    for (;;) {
      std::stable_sort(pending_.begin(), pending_.end(),
                       [](const Pending& a, const Pending& b) { return a.when < b.when; });
      Duration next = end;
      if (!pending_.empty()) next = std::min(next, pending_.front().when);
      if (auto dl = engine_.poll_timeout(); dl && *dl < next) next = std::max(*dl, now_);
      if (next >= end && (pending_.empty() || pending_.front().when > end)) break;
      now_ = next;
      deliver_due();
      engine_.on_timer(at(now_));
      collect();
    }
    now_ = end;
    engine_.on_timer(at(now_));
    collect();
  }

  // Reverse the order of everything in flight (reordering test).
  void reverse_in_flight() {
    std::vector<Duration> times;
    for (auto& p : pending_) times.push_back(p.when);
    std::sort(times.begin(), times.end());
    std::sort(pending_.begin(), pending_.end(),
              [](const Pending& a, const Pending& b) { return a.when > b.when; });
    for (std::size_t i = 0; i < pending_.size(); ++i) pending_[i].when = times[i];
  }
  std::vector<Pending>& in_flight() { return pending_; }

  // An ICMP error from outside the simulation (IPv6 needs its sender).
  void inject_icmp(const testpkt::Buf& bytes, const std::string& v6_router = "") {
    deliver(bytes, true, v6_router);
    collect();
  }
  void peer_sends(const testpkt::Tcp& t) {
    deliver(testpkt::ip_packet(t), false);
    collect();
  }

  // What the engine decided for this network's flow.
  void take(const core::ProbePacket& probe) {
    sent_probes_.emplace_back(probe.view().begin(), probe.view().end());
    route(sent_probes_.back(), true);
  }
  void take(const core::HopEvent& hop) { hops.push_back(hop); }
  void take(const core::TraceResult& trace) { traces.push_back(trace); }
  void take(const core::PathChange& change) { path_changes.push_back(change); }
  core::FlowKey key() const { return key_of(flow_); }

  std::vector<core::TraceResult> traces;
  std::vector<core::PathChange> path_changes;
  std::vector<core::HopEvent> hops;
  std::vector<testpkt::Buf> sent_probes_;
  std::vector<std::uint8_t> mangled_;
  int peer_dups_received = 0;  // duplicates that reached the peer
  // The rules copy the flow's packets (no verdict applies) unless its mark
  // asks for the queue (Skip::queued): a cooperating server's.
  bool copies_unless_queued = false;
  bool forwarded = false;  // this host forwards the connection: its packets came in by an interface

 private:
  void route(const testpkt::Buf& pkt, bool is_probe) {
    const bool v6 = (pkt[0] >> 4) == 6;
    const int ttl = v6 ? pkt[7] : pkt[8];
    const int d = path_.distance();
    auto parsed = wire::parse_tcp_packet(wire::Bytes(pkt), static_cast<std::uint32_t>(pkt.size()));
    const int reach = std::min(ttl, d);
    if (path_.loss > 0 && reach > path_.lossy_after && std::bernoulli_distribution(path_.loss)(rng_))
      return;
    testpkt::Buf seen = pkt;  // as it arrives where it expires
    for (const auto& [after, rewrite] : path_.rewrite_after)
      if (after < reach) rewrite(seen);
    if (ttl < d) {
      if (path_.silent.count(ttl)) return;
      if (auto budget = path_.icmp_budget.find(ttl); budget != path_.icmp_budget.end()) {
        if (budget->second == 0) return;
        --budget->second;
      }
      Pending p;
      p.when = now_ + 2 * ttl * path_.per_hop;
      if (auto slow = path_.slow_icmp.find(ttl); slow != path_.slow_icmp.end()) p.when += slow->second;
      const std::string& router = path_.routers[static_cast<std::size_t>(ttl - 1)];
      if (v6) p.router = router;
      p.bytes = testpkt::icmp_error(seen, v6 ? "" : router, path_.quote_bytes);
      if (auto mpls = path_.mpls_at.find(ttl); mpls != path_.mpls_at.end())
        p.bytes = testpkt::with_mpls(p.bytes, mpls->second);
      pending_.push_back(std::move(p));
      return;
    }
    // Reached the peer.
    if (!is_probe) {  // a (mangled) original: the peer acknowledges it
      testpkt::Tcp ack = reply_template();
      ack.ack = parsed->end_seq();
      ack.flags = 0x10;
      pending_.push_back(Pending{now_ + 2 * d * path_.per_hop, testpkt::ip_packet(ack), false, ""});
      return;
    }
    ++peer_dups_received;
    if (!path_.peer_answers || parsed->payload_len == 0) return;
    if (path_.dsacks_cleared.contains(peer_dups_received)) return;
    testpkt::Tcp dsack = reply_template();
    dsack.flags = 0x10;
    dsack.options = testpkt::sack_option(parsed->seq, parsed->end_seq());
    Duration when = now_ + 2 * d * path_.per_hop;
    if (auto slow = path_.slow_dsacks.find(peer_dups_received); slow != path_.slow_dsacks.end())
      when += slow->second;
    if (path_.peer_names_last_duplicate_only) {
      auto same_ack = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
        return p.dsack && p.when == when;
      });
      if (same_ack != pending_.end()) {
        same_ack->bytes = testpkt::ip_packet(dsack);
        return;
      }
    }
    pending_.push_back(Pending{when, testpkt::ip_packet(dsack), false, "", true});
  }

  testpkt::Tcp reply_template() const {
    testpkt::Tcp r;
    r.src = flow_.dst;
    r.dst = flow_.src;
    r.sport = flow_.dport;
    r.dport = flow_.sport;
    r.seq = flow_.ack;
    r.ack = flow_.seq;
    r.ttl = static_cast<std::uint8_t>(64 - path_.distance() + 1);
    return r;
  }

  void deliver_due() {
    while (!pending_.empty() && pending_.front().when <= now_) {
      Pending p = std::move(pending_.front());
      pending_.erase(pending_.begin());
      deliver(p.bytes, p.icmp, p.router);
    }
  }

  void deliver(const testpkt::Buf& bytes, bool icmp, const std::string& v6_router = "") {
    if (icmp) {
      if (!v6_router.empty()) {
        auto e = wire::parse_icmp6(wire::Bytes(bytes), testpkt::addr(v6_router),
                                   testpkt::addr(flow_.src), 60);
        if (e) engine_.on_icmp(*e, at(now_));
        return;
      }
      auto e = wire::parse_icmp4(wire::Bytes(bytes));
      if (e) engine_.on_icmp(*e, at(now_));
      return;
    }
    auto p = wire::parse_tcp_packet(wire::Bytes(bytes), static_cast<std::uint32_t>(bytes.size()));
    if (p) engine_.on_peer_packet(*p, at(now_));
  }

  void collect() { drain(engine_); }

  core::Engine& engine_;
  Path path_;
  testpkt::Tcp flow_;
  Duration now_{0};
  std::vector<Pending> pending_;
  std::mt19937 rng_{path_.seed};
};

inline void drain(core::Engine& engine) {
  Fabric& fabric = fabrics()[&engine];
  const auto network_of = [&fabric](const core::FlowKey& flow) -> Network* {
    for (Network* n : fabric.networks)
      if (n->key() == flow) return n;
    ADD_FAILURE() << "a decision for a flow no network carries";
    return nullptr;
  };
  while (auto decision = engine.poll()) {
    std::visit(nfqtrace::Overloaded{
                   [&](const core::ProbePacket& probe) {
                     fabric.decided.push_back("probe");
                     auto p = wire::parse_tcp_packet(probe.view(), probe.size);
                     ASSERT_TRUE(p) << "a probe that does not parse";
                     if (Network* n = network_of(core::FlowKey{p->src, p->dst, p->sport, p->dport}))
                       n->take(probe);
                   },
                   [&](const core::HopEvent& hop) {
                     fabric.decided.push_back("hop");
                     if (Network* n = network_of(hop.flow)) n->take(hop);
                   },
                   [&](const core::TraceResult& trace) {
                     fabric.decided.push_back("trace");
                     if (Network* n = network_of(trace.flow)) n->take(trace);
                   },
                   [&](const core::PathChange& change) {
                     fabric.decided.push_back("path_change");
                     if (Network* n = network_of(change.flow)) n->take(change);
                   },
                   [&](const core::SkipChange& change) {
                     const char* kinds[] = {"unskip", "skip", "watch", "between_waves", "wave", "queued"};
                     fabric.marks[change.flow] = change.skip;
                     const bool was_between = fabric.between_waves.erase(change.flow) > 0;
                     // Back for the next wave: all its packets, or (one_copy_waves) the next.
                     const bool next_wave = was_between && (change.skip == core::Skip::none ||
                                                            change.skip == core::Skip::wave);
                     if (change.skip == core::Skip::replies) {
                       fabric.between_waves.insert(change.flow);
                     } else if (!next_wave || change.recheck) {
                       fabric.skip_changes.push_back(change);
                     }
                     // "next_packet": back for the next wave's one packet.
                     const char* back = change.skip == core::Skip::wave ? "next_packet" : "next_wave";
                     fabric.decided.push_back(next_wave ? back : kinds[static_cast<int>(change.skip)]);
                   }},
               *decision);
  }
  EXPECT_EQ(engine.counters().illegal_transitions, 0u);
}

// How the runtime's attempt to set or clear a flow's conntrack mark went.
enum class Marking { done, failed, connection_gone };

inline void answer_skip(core::Engine& engine, const core::SkipChange& change, Marking how,
                        Duration now) {
  engine.handle(core::SkipApplied{change, how == Marking::done, how == Marking::connection_gone},
                at(now));
  drain(engine);
}

}  // namespace sim
