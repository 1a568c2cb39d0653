// What a run did, for stderr at exit: one line of totals, and one more
// naming every packet we refused and why, when we refused any.
#pragma once

#include <string>

#include "nfqtrace/runtime/tracer.hpp"

namespace nfqtrace::cli {

std::string run_summary(std::string_view tool, const runtime::Tracer& tracer);

}  // namespace nfqtrace::cli
