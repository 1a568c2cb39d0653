#include "nfqtrace/core/sender_clock.hpp"

#include <chrono>

#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::core {
namespace {

bool newer(std::uint32_t a, std::optional<std::uint32_t> than) {
  return !than || wire::seq_before(*than, a);
}

// Our clock in whole milliseconds, modulo 2^32 as timestamps are.
std::uint32_t millis(Duration t) {
  return static_cast<std::uint32_t>(std::chrono::floor<std::chrono::milliseconds>(t).count());
}

}  // namespace

void SenderClock::on_own(std::uint32_t tsval, Duration at) {
  const std::uint32_t offset = tsval - millis(at);
  if (newer(offset, read_offset_)) read_offset_ = offset;
  if (newer(tsval, newest_)) newest_ = tsval;
}

void SenderClock::on_echo(std::uint32_t tsecr, Duration at) {
  if (!read_offset_ || !newer(tsecr, newest_)) return;
  // One tick more: the sender's ticks and our milliseconds need not turn
  // over at the same instant.
  if (wire::seq_before(millis(at) + *read_offset_ + 1u, tsecr)) return;
  newest_ = tsecr;
}

std::optional<std::uint32_t> SenderClock::newer_than(std::uint32_t copied) const {
  if (newest_ && wire::seq_before(copied, *newest_)) return newest_;
  return std::nullopt;
}

}  // namespace nfqtrace::core
