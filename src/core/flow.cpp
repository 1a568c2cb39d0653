#include "nfqtrace/core/flow.hpp"

namespace nfqtrace::core {

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::fresh: return "fresh";
    case Phase::unsampled: return "unsampled";
    case Phase::watching: return "watching";
    case Phase::waiting: return "waiting";
    case Phase::admitted: return "admitted";
    case Phase::tracing: return "tracing";
    case Phase::resting: return "resting";
    case Phase::closing: return "closing";
  }
  return "unknown";
}

bool allowed_transition(Phase from, Phase to) {
  if (to == Phase::closing) return from != Phase::closing;
  switch (from) {
    case Phase::fresh:
      return to == Phase::unsampled || to == Phase::waiting || to == Phase::tracing ||
             to == Phase::watching;
    case Phase::watching: return to == Phase::waiting || to == Phase::admitted;
    case Phase::waiting: return to == Phase::admitted;
    case Phase::admitted: return to == Phase::tracing;
    case Phase::tracing: return to == Phase::resting;
    case Phase::resting:
      return to == Phase::waiting || to == Phase::tracing || to == Phase::watching;
    case Phase::unsampled:
    case Phase::closing: return false;
  }
  return false;
}

}  // namespace nfqtrace::core
