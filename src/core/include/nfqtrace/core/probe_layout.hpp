// Where the probes of a dup wave go. Each copies a sub-range of bytes the
// connection sent (a duplicate the peer already has) or, for a flow that
// never sent data, of sequence space the peer acknowledged long ago (old
// bytes it answers at once, with a D-SACK, whatever they hold: it never
// compares them; random ones, which no forger of replies can guess). Each is apart from every other probe of the round, never
// touching one (a receiver could merge adjacent duplicates into one range
// that names no probe), with its length in the round's secret order and a
// random gap before it, so that no off-path sender can predict the layout.
// With little data to copy (a short request) probes are one byte each, two
// apart, the most a round gets out of it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "nfqtrace/core/probe_budget.hpp"
#include "nfqtrace/core/trace.hpp"
#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::core {

class ProbeLayout {
 public:
  // `source`: the data to copy, starting at `source_seq` (may be empty).
  // `acked`: the peer has acknowledged everything below it and no byte is
  // in flight (a flow that never sent data), if so.
  ProbeLayout(const Trace& trace, ProbeRandom& random, wire::Bytes source,
              std::uint32_t source_seq, std::optional<std::uint32_t> acked);

  struct Placement {
    std::uint32_t seq = 0;
    wire::Bytes payload;
  };
  // The next probe of the wave, `left` probes (this one included) still to
  // place; nothing when there is no room (the rest waits for later packets).
  // Its payload is valid until the next call.
  std::optional<Placement> next(std::size_t left);

 private:
  std::optional<Placement> in_source(std::size_t left);
  std::optional<Placement> below_acked();
  // The first free range of `length` bytes of the source at or after `from`.
  std::optional<std::uint32_t> free_at(std::uint32_t from, std::uint32_t length) const;

  const Trace& trace_;
  ProbeRandom& random_;
  wire::Bytes source_;
  std::uint32_t source_seq_;
  std::optional<std::uint32_t> acked_;
  std::uint32_t offset_;     // where the next probe may start in the source
  std::uint32_t below_ = 0;  // how far below `acked` the last old-bytes probe began
  std::optional<bool> compact_;  // one byte each: decided for the whole wave
  std::array<std::uint8_t, probe_length_count> noise_{};  // an old-bytes probe's payload
};

}  // namespace nfqtrace::core
