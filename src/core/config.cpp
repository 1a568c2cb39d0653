#include "nfqtrace/core/config.hpp"

namespace nfqtrace::core {

TraceParams TraceParams::sanitized() const {
  TraceParams p = *this;
  if (p.max_ttl == 0) p.max_ttl = 1;
  if (p.ttl_repeat == 0) p.ttl_repeat = 1;
  if (p.packet_freq == 0) p.packet_freq = 1;
  if (p.first_window == 0) p.first_window = 1;
  return p;
}

}  // namespace nfqtrace::core
