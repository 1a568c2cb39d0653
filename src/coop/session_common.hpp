// What the server and client sessions share (private to src/coop).
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "nfqtrace/core/time.hpp"

namespace nfqtrace::coop {

// No filler is queued while this much is still unsent: the connection is
// carrying data already, and a peer that does not read gets no more of it.
inline constexpr std::size_t filler_backlog_limit = 4096;

// Limits may be "practically never" (Duration::max()): additions saturate.
inline core::Duration deadline_after(core::Duration start, core::Duration wait) {
  if (wait > core::Duration::max() - start) return core::Duration::max();
  return start + wait;
}

// "10 s", "0.05 s": durations in messages to people.
inline std::string seconds_text(core::Duration d) {
  return fmt::format("{:g} s", std::chrono::duration<double>(d).count());
}

}  // namespace nfqtrace::coop
