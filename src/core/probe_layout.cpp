#include "nfqtrace/core/probe_layout.hpp"

#include <algorithm>

namespace nfqtrace::core {
namespace {

// Offset 0 would share its sequence number with the original segment.
constexpr std::uint32_t first_offset = 1;
// Up to this many more bytes between two probes, at random.
constexpr std::uint32_t max_extra_gap = 4;
// Old bytes are taken this far below the acknowledged point at most.
constexpr std::uint32_t old_bytes_reach = 4096;

}  // namespace

ProbeLayout::ProbeLayout(const Trace& trace, ProbeRandom& random, wire::Bytes source,
                         std::uint32_t source_seq, std::optional<std::uint32_t> acked)
    : trace_(trace),
      random_(random),
      source_(source),
      source_seq_(source_seq),
      acked_(acked),
      offset_(first_offset) {
  // Earlier waves of the round copied from the same bytes: after them.
  const auto end = trace.last_probe_end(source_seq, source_seq + static_cast<std::uint32_t>(source.size()));
  if (end) offset_ = std::max(offset_, *end - source_seq + 1);
}

std::optional<ProbeLayout::Placement> ProbeLayout::next(std::size_t left) {
  if (auto p = in_source(left)) return p;
  return below_acked();
}

std::optional<std::uint32_t> ProbeLayout::free_at(std::uint32_t from, std::uint32_t length) const {
  for (std::uint32_t at = from; at + length <= source_.size(); ++at)
    if (!trace_.range_in_use(source_seq_ + at, length)) return at;
  return std::nullopt;
}

std::optional<ProbeLayout::Placement> ProbeLayout::in_source(std::size_t left) {
  if (source_.size() <= first_offset) return std::nullopt;
  // The wave at its own lengths, a byte apart, if it fits: what room is
  // left over goes to random gaps. Else the whole wave one byte each.
  std::size_t needed = 0;
  for (std::size_t k = 0; k < left; ++k) needed += trace_.next_probe_length(k) + 1u;
  const std::size_t room = offset_ < source_.size() ? source_.size() - offset_ : 0;
  if (!compact_) compact_ = room < needed;
  std::uint32_t length = *compact_ ? 1 : trace_.next_probe_length();
  if (!*compact_) {
    const std::size_t slack = room >= needed ? (room - needed) / left : 0;
    offset_ += random_.below(static_cast<std::uint32_t>(std::min<std::size_t>(max_extra_gap, slack)) + 1);
  }
  std::optional<std::uint32_t> at = free_at(offset_, length);
  if (!at && length > 1) at = free_at(first_offset, length = 1);
  if (!at) return std::nullopt;
  offset_ = *at + length + 1;
  return Placement{source_seq_ + *at, source_.subspan(*at, length)};
}

std::optional<ProbeLayout::Placement> ProbeLayout::below_acked() {
  if (!acked_) return std::nullopt;
  const std::uint32_t length = trace_.next_probe_length();
  below_ += 1 + random_.below(max_extra_gap + 1);
  while (below_ + length < old_bytes_reach && trace_.range_in_use(*acked_ - below_ - length, length))
    ++below_;
  if (below_ + length >= old_bytes_reach) return std::nullopt;
  below_ += length;
  // The peer never looks at them; a forger cannot guess them.
  for (std::uint8_t& b : noise_) b = static_cast<std::uint8_t>(random_.next() >> 24);
  return Placement{*acked_ - below_, wire::Bytes(noise_.data(), length)};
}

}  // namespace nfqtrace::core
