#include "nfqtrace/core/admission.hpp"

#include <algorithm>
#include <chrono>

namespace nfqtrace::core {

std::size_t Admission::limit_for(const EngineConfig& config) {
  std::size_t limit = config.max_flows;
  if (config.probes_per_second > 0) {
    const double served = config.probes_per_second *
                          std::chrono::duration<double>(config.trace.timeout).count() /
                          std::max<double>(config.trace.first_window, 1);
    limit = std::min<std::size_t>(limit, std::max<std::size_t>(4, static_cast<std::size_t>(served)));
  }
  return std::max<std::size_t>(limit, 1);
}

bool Admission::keep() {
  if (!has_room()) return false;
  ++kept_;
  return true;
}

void Admission::start(bool in_kept_place) {
  if (in_kept_place && kept_ > 0) --kept_;
  ++running_;
}

void Admission::end() {
  if (running_ > 0) --running_;
}

void Admission::give_up_kept() {
  if (kept_ > 0) --kept_;
}

void Admission::clear() {
  running_ = 0;
  kept_ = 0;
  waiting_.clear();
}

}  // namespace nfqtrace::core
