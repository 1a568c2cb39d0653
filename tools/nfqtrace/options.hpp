// The command line of nfqtrace: the option names of the original
// ParasiticTraceroute, plus ours.
#pragma once

#include <variant>

#include "../common/address_lookup.hpp"
#include "../common/metrics.hpp"
#include "../common/trace_options.hpp"

namespace nfqtrace::cli {

struct Options {
  runtime::TracerOptions tracer;
  ResultOptions results;
  MetricsOptions metrics;
  LookupOptions lookup;
  std::string user;
};

std::variant<Options, Exit> parse_options(int argc, char** argv);

}  // namespace nfqtrace::cli
