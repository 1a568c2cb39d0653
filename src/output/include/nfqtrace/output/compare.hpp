// Two traces of one connection, forward and reverse, side by side.
#pragma once

#include <string>

#include "nfqtrace/core/result.hpp"

namespace nfqtrace::output {

// A table with one line per TTL, each direction in its own column, and a
// mark on the lines where a router address was seen in one direction only.
std::string compare_text(const core::TraceResult& forward, const core::TraceResult& reverse);

}  // namespace nfqtrace::output
