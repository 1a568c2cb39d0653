// --metrics: what a fleet's Prometheus scrapes from each tracer.
//
// MetricsRecorder watches the results as they pass (a cli::ResultConsumer:
// traces by reason, their durations, path changes, the --metrics-top
// destination prefixes); metrics_snapshot() adds the tracer's counters and
// gauges at the moment of a scrape; metrics_text() writes the page, a pure
// function of the snapshot (the unit tests check it). No label takes a hop
// address or a flow: a fleet of thousands of hosts must not explode the
// series count. The one bounded exception is --metrics-top N, N destination
// prefixes (/24, /48) at most.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "nfqtrace/core/counters.hpp"
#include "nfqtrace/core/engine.hpp"
#include "nfqtrace/core/result.hpp"
#include "nfqtrace/runtime/tracer.hpp"
#include "address_lookup.hpp"  // LookupCounts
#include "nfqtrace/wire/address.hpp"
#include "results.hpp"

namespace nfqtrace::cli {

// Where to serve /metrics.
struct ListenAddress {
  wire::Address address;
  std::uint16_t port = 0;
};
// "127.0.0.1:9100", "[::1]:9100", "0.0.0.0:9100", "[::]:9100"; nullopt on
// anything else (no host names: the address is bound before anything else).
std::optional<ListenAddress> parse_listen_address(const std::string& text);

struct MetricsOptions {
  std::optional<ListenAddress> listen;  // --metrics; none: no endpoint
  std::size_t top = 0;                  // --metrics-top; 0: no prefix series
};
inline constexpr std::size_t max_metrics_top = 1000;

// --metrics ADDR:PORT and --metrics-top N.
void add_metrics_options(CLI::App& app, MetricsOptions& values);

// The trace-duration histogram's upper bounds, in seconds (+Inf besides).
inline constexpr std::array<double, 11> trace_duration_buckets{0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                               5,    10,  30,   60,  120};
inline constexpr std::size_t stop_reasons = 5;  // core::StopReason's values

// One destination prefix of --metrics-top.
struct PrefixStats {
  std::string prefix;          // "198.51.100.0/24", "2001:db8:1::/48"
  std::uint64_t traces = 0;    // an upper bound: see MetricsRecorder
  std::uint64_t reached = 0;
  std::uint64_t last_hops = 0;  // hops of its latest trace
};

// What the recorder counted from the results.
struct ResultCounts {
  std::array<std::uint64_t, stop_reasons> traces_by_reason{};
  // Cumulative as Prometheus wants them: [i] counts durations <= bucket i.
  std::array<std::uint64_t, trace_duration_buckets.size()> duration_buckets{};
  double duration_sum_s = 0;
  std::uint64_t path_changes = 0;
  std::uint64_t hop_lines = 0;  // replies reported as they were matched
  std::vector<PrefixStats> top;  // most traced first
};

// Everything one page shows.
struct MetricsSnapshot {
  std::string version, revision;
  ResultCounts results;
  // From the tracer, when there is one to ask.
  std::optional<core::EngineCounters> engine;
  std::optional<runtime::RuntimeCounters> runtime;
  std::optional<core::Engine::FlowCounts> flows;
  LookupCounts lookups;  // the names and AS numbers' (AddressLookup::counts())
  std::optional<std::uint64_t> server_clients;  // nfqtrace-server: clients connected
};

// The page in the Prometheus text exposition format 0.0.4.
std::string metrics_text(const MetricsSnapshot& snapshot);

// Counts the results as they pass. With --metrics-top N it keeps at most N
// destination prefixes, the most traced ones by the space-saving algorithm
// (Metwally et al.): a new prefix when all N places are taken replaces the
// least traced one and starts from its count, so a prefix's count is an
// upper bound, exact for every prefix that was never out of the table.
class MetricsRecorder final : public ResultConsumer {
 public:
  explicit MetricsRecorder(std::size_t top = 0) : top_limit_(top) {}

  void hop(const core::HopEvent& hop, Direction direction) override;
  void trace(const core::TraceResult& trace, Direction direction) override;
  void path_change(const core::PathChange& change) override;

  // The look-up counts of the names and AS numbers (0 until given): pushed
  // as they change, or read from `source` at each scrape, e.g.
  //   recorder.set_lookup_source([&lookup] { return lookup.counts(); });
  void set_lookup_counts(const LookupCounts& counts) { lookups_ = counts; }
  void set_lookup_source(std::function<LookupCounts()> source) { lookup_source_ = std::move(source); }
  LookupCounts lookup_counts() const { return lookup_source_ ? lookup_source_() : lookups_; }

  // What it counted so far; the prefixes most traced first.
  ResultCounts counts() const;

 private:
  void count_prefix(const core::TraceResult& trace);

  std::size_t top_limit_;
  ResultCounts counts_;  // all but `top`
  std::vector<PrefixStats> top_;
  LookupCounts lookups_;
  std::function<LookupCounts()> lookup_source_;
};

// The snapshot of a scrape: the recorder's counts, the build, and the
// tracer's counters and gauges when `tracer` is given.
MetricsSnapshot metrics_snapshot(const MetricsRecorder& recorder, const runtime::Tracer* tracer);

// Destination prefix of a trace for --metrics-top: /24 for IPv4, /48 for IPv6.
std::string destination_prefix(const wire::Address& address);

}  // namespace nfqtrace::cli
