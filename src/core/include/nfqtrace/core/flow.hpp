// One traced connection's life in the engine.
//
//            +--> unsampled                     (--sample left it out)
//            |
//   fresh ---+--> tracing <--> resting          (rounds: --repeat)
//            |      ^  \          |
//            |      |   \         v
//            +--> waiting --> admitted          (no room: --max-flows, --pps)
//            |                  ^
//            +--> watching -----+               (--trigger retransmit; back
//                                                from resting when due)
//
//   any phase --FIN/RST--> closing --linger--> forgotten
//
// fresh: seen, never traced; its next data may start a round (or put it in
//   line, or leave it out).
// watching (--trigger retransmit): waits for its sender to retransmit, its
//   packets past the queue and only copied to us; a retransmission admits
//   it (or puts it in line). After a round it watches again once --repeat
//   says the next is due.
// waiting: a round is due and there is no room: it waits its turn, past the
//   queue when it can. admitted: its turn came, a place is kept, its next
//   packet starts the round.
// tracing: a round runs. resting: between rounds, or after the last one;
//   past the queue when it can, until its next round is due.
// closing: its connection closed; a round still running ends as soon as its
//   probes are answered or expired, then the flow lingers so the last
//   packets of the close start nothing new.
//
// Whether the flow's packets skip the queue is a separate fact (`skip`): the
// runtime may fail to set the mark, and then the flow stays where it is in
// its life with its packets still coming through. During a round it skips
// between waves (its probes are out, its answers come on their own).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/decisions.hpp"
#include "nfqtrace/core/path_history.hpp"
#include "nfqtrace/core/sender_clock.hpp"
#include "nfqtrace/core/time.hpp"
#include "nfqtrace/core/trace.hpp"

namespace nfqtrace::core {

enum class Phase : std::uint8_t {
  fresh, unsampled, watching, waiting, admitted, tracing, resting, closing
};

std::string_view to_string(Phase phase);
// The transitions the diagram allows (closing is reachable from every
// phase but itself).
bool allowed_transition(Phase from, Phase to);

// A flow's timers, each with one meaning. At most one of each is pending.
enum class FlowTimer : std::uint8_t {
  probe_expiry,  // the earliest unanswered probe of its round times out
  idle_check,    // silent for --idle-timeout? (skipping: does it still exist?)
  linger,        // closing: time to forget it
  next_round,    // resting past the queue: its next round is due
};
inline constexpr std::size_t flow_timer_count = 4;

struct Flow {
  // The first bytes of the last data the flow sent: pure ACKs carry no
  // payload, so their probes are built from these (a byte-identical copy of
  // data the peer already has is a harmless duplicate to it).
  struct SentBytes {
    std::uint32_t seq = 0;
    std::uint16_t len = 0;
    std::array<std::uint8_t, 128> bytes{};
  };

  Phase phase = Phase::fresh;
  Skip skip = Skip::none;            // how its packets reach us
  std::shared_ptr<const TraceParams> params;  // the engine's, or the flow's own
  std::unique_ptr<Trace> trace;      // the round running now (tracing, closing)
  // The last round, while probes it took for silent may still be answered
  // (till their --timeout, `previous_until`): a late reply is still its.
  std::unique_ptr<Trace> previous;
  Duration previous_until{0};
  std::uint32_t rounds = 0;          // rounds started so far
  Duration round_started{0};
  Duration last_seen{0};
  // Closing: the gap before its last packet. A close backing off (its last
  // data or FIN resent, the RTO doubling) comes again within twice that.
  Duration close_gap{0};
  std::array<std::optional<Duration>, flow_timer_count> timers{};
  std::uint32_t packets_since_probe = 0;
  std::uint32_t packets_since_data = 0;  // a long run: a flow that only ACKs
  // The last ACK the flow sent: a RST from the peer must fall near it (an
  // off-path sender cannot know it).
  std::optional<std::uint32_t> last_ack;
  // Where its data has reached (the end of the furthest byte sent): data
  // below it is a retransmission.
  std::optional<std::uint32_t> sent_end;
  SentBytes sent;
  SenderClock clock;  // its TCP timestamps: the newest a probe may carry
  // What its rounds learned: a device shifting its sequence numbers, the
  // destination's distance, the path and its losses, the TTL the peer's
  // packets arrive with.
  std::optional<std::uint32_t> seq_offset;
  std::uint8_t known_distance = 0;
  PathHistory history;
  std::uint8_t peer_ttl = 0;
  Duration silence_margin{0};  // grown by late replies
  bool triggered = false;      // a retransmission let it in: its next round counts so
  // Its last wave ran out of data to copy before all its TTLs were probed:
  // the rest needs the flow's next packets, not just one (Skip::none).
  bool wave_short_of_data = false;

  std::optional<Duration>& timer(FlowTimer which) { return timers[static_cast<std::size_t>(which)]; }
  // Its next round is due (with --repeat, one interval after the last began).
  bool round_due(Duration now) const {
    return params->repeat && now >= round_started + *params->repeat;
  }
};

}  // namespace nfqtrace::core
