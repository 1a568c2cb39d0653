// A connection's TCP timestamp clock (RFC 7323) as far as the packets we see
// tell. A dup-mode probe copies the header of a packet that may be some
// milliseconds old by the time it leaves (the copy reached us late, the
// connection went on sending); if its later segments have moved the peer's
// last seen timestamp more than a tick past the copy's, the peer discards
// the probe unanswered (PAWS, RFC 7323 5.3) and the destination looks
// silent. The probe then carries a newer value, but only one the sender has
// used: a probe the peer accepts may become its last seen timestamp, and the
// connection's later segments (stamped no earlier) must never look older.
// (Not a value read off our clock: a paced sender stamps its segments with
// their departure time, ahead of the clock.)
#pragma once

#include <cstdint>
#include <optional>

#include "nfqtrace/core/time.hpp"

namespace nfqtrace::core {

class SenderClock {
 public:
  // One of the sender's packets, with this TSval, read at `at`.
  void on_own(std::uint32_t tsval, Duration at);
  // The peer echoes `tsecr` (the sender's value it last took), at `at`.
  // Believed only as far as a clock at the fastest rate RFC 7323 allows (a
  // tick a millisecond) can have moved since the sender's packet we read
  // soonest after its stamp: a forged echo must not set probes ahead of the
  // sender.
  void on_echo(std::uint32_t tsecr, Duration at);
  // The TSval for a probe built from a packet carrying `copied`: the newest
  // value known when that is newer, else none (the copy's own stays).
  std::optional<std::uint32_t> newer_than(std::uint32_t copied) const;

 private:
  std::optional<std::uint32_t> newest_;  // its own packets' or echoed
  // The largest TSval less our milliseconds when we read it: the packet read
  // soonest after its stamp (a copy read late gives less).
  std::optional<std::uint32_t> read_offset_;
};

}  // namespace nfqtrace::core
