#include "nfqtrace/core/probe_budget.hpp"

#include <algorithm>
#include <chrono>

namespace nfqtrace::core {

ProbeBudget::ProbeBudget(double per_second, std::uint32_t burst)
    : per_second_(per_second), burst_(burst), tokens_(burst) {}

std::size_t ProbeBudget::take(std::size_t wanted, Duration now) {
  if (per_second_ <= 0) return wanted;
  const double elapsed = std::chrono::duration<double>(now - filled_at_).count();
  filled_at_ = now;
  tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * per_second_);
  const auto granted = std::min<std::size_t>(wanted, static_cast<std::size_t>(tokens_));
  tokens_ -= static_cast<double>(granted);
  return granted;
}

void ProbeBudget::give_back(std::size_t unused) {
  if (per_second_ > 0) tokens_ = std::min(burst_, tokens_ + static_cast<double>(unused));
}

}  // namespace nfqtrace::core
