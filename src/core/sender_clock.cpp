#include "nfqtrace/core/sender_clock.hpp"

#include <chrono>

#include "nfqtrace/wire/tcp_packet.hpp"

namespace nfqtrace::core {
namespace {

bool newer(std::uint32_t a, std::optional<std::uint32_t> than) {
  return !than || wire::seq_before(*than, a);
}

}  // namespace

void SenderClock::on_own(std::uint32_t tsval, Duration at) {
  if (!newer(tsval, own_)) return;
  own_ = tsval;
  own_at_ = at;
  if (newer(tsval, newest_)) newest_ = tsval;
}

void SenderClock::on_echo(std::uint32_t tsecr, Duration at) {
  if (!own_ || !newer(tsecr, newest_) || at < own_at_) return;
  // One tick more than the milliseconds passed: the sender's clock may have
  // ticked just after the packet we saw was stamped.
  const auto passed = std::chrono::duration_cast<std::chrono::milliseconds>(at - own_at_).count();
  if (tsecr - *own_ > static_cast<std::uint64_t>(passed) + 1u) return;
  newest_ = tsecr;
}

std::optional<std::uint32_t> SenderClock::newer_than(std::uint32_t copied) const {
  if (newest_ && wire::seq_before(copied, *newest_)) return newest_;
  return std::nullopt;
}

}  // namespace nfqtrace::core
