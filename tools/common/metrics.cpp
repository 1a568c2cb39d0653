#include "metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "nfqtrace/base/version.hpp"
// Generated at build time (cmake/BuildInfo.cmake); "" when there is none.
#if __has_include("git_revision.hpp")
#include "git_revision.hpp"
#endif
#ifndef NFQTRACE_GIT_REVISION
#define NFQTRACE_GIT_REVISION ""
#endif

namespace nfqtrace::cli {
namespace {

// A label value as the format wants it: backslash, quote and newline escaped.
std::string escaped(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// The page, one metric family at a time.
class Page {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  // `labels`: name="value" pairs already written, or empty.
  void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    if (labels.empty()) fmt::format_to(std::back_inserter(text_), "{} {}\n", name, value);
    else fmt::format_to(std::back_inserter(text_), "{}{{{}}} {}\n", name, labels, value);
  }
  void sample(std::string_view name, std::string_view labels, double value) {
    if (labels.empty()) fmt::format_to(std::back_inserter(text_), "{} {}\n", name, value);
    else fmt::format_to(std::back_inserter(text_), "{}{{{}}} {}\n", name, labels, value);
  }
  // A family of one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help,
              std::uint64_t value) {
    family(name, type, help);
    sample(name, "", value);
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, escaped(value));
}

void tracer_metrics(Page& page, const core::EngineCounters& e, const runtime::RuntimeCounters& r) {
  page.single("nfqtrace_queue_packets_total", "counter",
              "Packets the queue handed to the tracer (outgoing, the peer's, ICMP).",
              r.queue_packets);
  page.single("nfqtrace_outgoing_packets_total", "counter",
              "Outgoing packets of the selected connections seen (queued, or in dup mode copied).",
              e.packets);
  page.single("nfqtrace_copied_packets_total", "counter",
              "Copies of outgoing packets logged to the tracer (dup mode).", r.copied_packets);
  page.single("nfqtrace_log_copies_lost_total", "counter",
              "Logged copies the kernel dropped because the tracer's socket buffer was full.",
              r.log_copies_lost);
  page.single("nfqtrace_peer_packets_total", "counter",
              "Packets of the peers of traced connections seen.", e.peer_packets);
  page.single("nfqtrace_traces_started_total", "counter", "Traces (rounds) started.",
              e.traces_started);
  page.single("nfqtrace_probes_sent_total", "counter", "Probes sent.", e.probes_sent);
  page.single("nfqtrace_probe_waves_total", "counter",
              "Waves of probes (dup mode: probes copied from one packet).", e.waves);
  page.single("nfqtrace_probe_send_errors_total", "counter", "Probes the socket refused to send.",
              r.probe_send_errors);
  page.single("nfqtrace_probes_deferred_total", "counter",
              "Probes that waited for the --pps budget.", e.probes_deferred);
  page.single("nfqtrace_replies_matched_total", "counter",
              "ICMP errors matched to a probe of ours.", e.icmp_matched);

  page.family("nfqtrace_packets_refused_total", "counter",
              "Packets that read but answer no probe of ours, by packet and why.");
  const std::pair<std::string_view, std::uint64_t> icmp[] = {
      {"no_traced_flow", e.icmp_no_flow},        {"between_traces", e.icmp_no_trace},
      {"no_such_probe", e.icmp_no_probe},        {"repeated", e.icmp_repeated},
      {"unconfirmed_shift", e.icmp_unconfirmed}, {"bad_extensions", e.icmp_bad_extensions}};
  for (const auto& [reason, value] : icmp)
    page.sample("nfqtrace_packets_refused_total", label("packet", "icmp") + "," + label("reason", reason),
                value);
  page.sample("nfqtrace_packets_refused_total",
              label("packet", "peer") + "," + label("reason", "reset_off_the_window"),
              e.peer_resets_rejected);

  page.family("nfqtrace_packets_unreadable_total", "counter",
              "Packets that could not be read (each passed untouched), by packet and why.");
  const std::pair<std::string_view, const wire::ParseErrorCounts*> unreadable[] = {
      {"queued", &r.queue_unreadable}, {"copied", &r.copy_unreadable},
      {"peer", &r.peer_unreadable},    {"icmp", &r.icmp_unreadable}};
  for (const auto& [packet, counts] : unreadable) {
    for (std::size_t i = 0; i < wire::parse_error_kinds; ++i) {
      page.sample("nfqtrace_packets_unreadable_total",
                  label("packet", packet) + "," +
                      label("reason", wire::to_string(static_cast<wire::ParseError>(i))),
                  counts->by_reason[i]);
    }
  }
  page.single("nfqtrace_verdict_errors_total", "counter", "Verdicts the queue refused.",
              r.verdict_errors);
  page.single("nfqtrace_icmp_withheld_total", "counter",
              "Probe replies kept from the host's TCP stack.", r.icmp_withheld);
  page.single("nfqtrace_flows_refused_total", "counter",
              "Flows that had to wait for a place (--max-flows, --pps), once a round.",
              e.flows_refused);
  page.single("nfqtrace_flows_not_sampled_total", "counter", "Flows left out by --sample.",
              e.flows_not_sampled);
}

}  // namespace

std::optional<ListenAddress> parse_listen_address(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string_view host(text.data(), colon);
  const std::string_view port_text(text.data() + colon + 1, text.size() - colon - 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535)
    return std::nullopt;
  auto address = wire::Address::parse(host);
  // IPv6 only in brackets, IPv4 never.
  if (!address || bracketed != (address->family == wire::Family::v6)) return std::nullopt;
  return ListenAddress{*address, static_cast<std::uint16_t>(port)};
}

void add_metrics_options(CLI::App& app, MetricsOptions& values) {
  CLI::Option* listen = app.add_option_function<std::string>(
         "--metrics",
         [&values](const std::string& text) { values.listen = parse_listen_address(text); },
         "serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9100, [::]:9100)")
      ->type_name("ADDR:PORT")
      ->check([](const std::string& text) -> std::string {
        return parse_listen_address(text)
                   ? std::string()
                   : "expected ADDR:PORT (an IPv4 address, or an IPv6 one in brackets), got '" +
                         text + "'";
      });
  app.add_option("--metrics-top", values.top,
                 "with --metrics: per destination prefix (/24, /48) series for the N most traced")
      ->check(CLI::Range(std::size_t{1}, max_metrics_top))
      ->needs(listen);
}

std::string destination_prefix(const wire::Address& address) {
  wire::Address prefix = address;
  const bool v4 = address.family == wire::Family::v4;
  std::fill(prefix.bytes.begin() + (v4 ? 3 : 6), prefix.bytes.end(), std::uint8_t{0});
  return prefix.to_string() + (v4 ? "/24" : "/48");
}

void MetricsRecorder::hop(const core::HopEvent& /*hop*/, Direction /*direction*/) {
  ++counts_.hop_lines;
}

void MetricsRecorder::trace(const core::TraceResult& trace, Direction /*direction*/) {
  const auto reason = static_cast<std::size_t>(trace.reason);
  if (reason < counts_.traces_by_reason.size()) ++counts_.traces_by_reason[reason];
  const double seconds =
      std::max(0.0, std::chrono::duration<double>(trace.end.mono - trace.start.mono).count());
  counts_.duration_sum_s += seconds;
  for (std::size_t i = 0; i < trace_duration_buckets.size(); ++i)
    counts_.duration_buckets[i] += seconds <= trace_duration_buckets[i];
  if (top_limit_ > 0) count_prefix(trace);
}

void MetricsRecorder::path_change(const core::PathChange& /*change*/) { ++counts_.path_changes; }

void MetricsRecorder::count_prefix(const core::TraceResult& trace) {
  std::string prefix = destination_prefix(trace.flow.dst);
  auto it = std::find_if(top_.begin(), top_.end(),
                         [&prefix](const PrefixStats& p) { return p.prefix == prefix; });
  if (it == top_.end()) {
    if (top_.size() < top_limit_) {
      it = top_.insert(top_.end(), PrefixStats{std::move(prefix), 0, 0, 0});
    } else {
      // Space-saving: the least traced place goes, its count stays.
      it = std::min_element(top_.begin(), top_.end(), [](const PrefixStats& a, const PrefixStats& b) {
        return a.traces < b.traces;
      });
      it->prefix = std::move(prefix);
      it->reached = 0;
    }
  }
  ++it->traces;
  it->reached += trace.reached;
  it->last_hops = trace.hops.size();
}

ResultCounts MetricsRecorder::counts() const {
  ResultCounts c = counts_;
  c.top = top_;
  std::sort(c.top.begin(), c.top.end(), [](const PrefixStats& a, const PrefixStats& b) {
    return a.traces != b.traces ? a.traces > b.traces : a.prefix < b.prefix;
  });
  return c;
}

MetricsSnapshot metrics_snapshot(const MetricsRecorder& recorder, const runtime::Tracer* tracer) {
  MetricsSnapshot s;
  s.version = std::string(nfqtrace::version);
  s.revision = NFQTRACE_GIT_REVISION;
  s.results = recorder.counts();
  s.lookups = recorder.lookup_counts();
  if (tracer != nullptr) {
    s.engine = tracer->engine_counters();
    s.runtime = tracer->counters();
    s.flows = tracer->flow_counts();
  }
  return s;
}

std::string metrics_text(const MetricsSnapshot& s) {
  Page page;
  page.family("nfqtrace_build_info", "gauge", "The version and git revision of this tracer.");
  page.sample("nfqtrace_build_info", label("version", s.version) + "," + label("revision", s.revision),
              std::uint64_t{1});

  const ResultCounts& r = s.results;
  page.family("nfqtrace_traces_total", "counter", "Traces ended, by why they ended.");
  for (std::size_t i = 0; i < r.traces_by_reason.size(); ++i) {
    page.sample("nfqtrace_traces_total",
                label("reason", core::to_string(static_cast<core::StopReason>(i))),
                r.traces_by_reason[i]);
  }
  page.family("nfqtrace_trace_duration_seconds", "histogram",
              "How long the ended traces took, first probe to verdict.");
  std::uint64_t count = 0;
  for (const auto n : r.traces_by_reason) count += n;
  for (std::size_t i = 0; i < trace_duration_buckets.size(); ++i) {
    page.sample("nfqtrace_trace_duration_seconds_bucket",
                label("le", fmt::format("{}", trace_duration_buckets[i])), r.duration_buckets[i]);
  }
  page.sample("nfqtrace_trace_duration_seconds_bucket", label("le", "+Inf"), count);
  page.sample("nfqtrace_trace_duration_seconds_sum", "", r.duration_sum_s);
  page.sample("nfqtrace_trace_duration_seconds_count", "", count);
  page.single("nfqtrace_path_changes_total", "counter",
              "Times a flow's path differed from its previous round's (--repeat).", r.path_changes);
  page.single("nfqtrace_hop_replies_total", "counter",
              "Replies reported as hop lines the moment they were matched.", r.hop_lines);

  if (s.engine && s.runtime) tracer_metrics(page, *s.engine, *s.runtime);
  if (s.flows) {
    page.single("nfqtrace_flows_tracked", "gauge", "Connections the tracer knows now.",
                s.flows->tracked);
    page.single("nfqtrace_flows_tracing", "gauge", "Connections being traced now.",
                s.flows->tracing);
    page.single("nfqtrace_flows_waiting", "gauge",
                "Connections waiting for a place to be traced (--max-flows, --pps).",
                s.flows->waiting);
    page.single("nfqtrace_flows_skipping", "gauge",
                "Connections whose packets pass the queue by now (conntrack mark).",
                s.flows->skipping);
  }
  if (s.server_clients) {
    page.single("nfqtrace_server_clients", "gauge", "nfqtrace-client connections served now.",
                *s.server_clients);
  }

  const LookupCounts& l = s.lookups;
  page.single("nfqtrace_dns_lookups_total", "counter", "Reverse DNS look-ups of hop addresses.",
              l.name_lookups);
  page.single("nfqtrace_dns_lookup_failures_total", "counter",
              "Reverse DNS look-ups that failed (no name, timeout, server failure).",
              l.name_failures);
  page.single("nfqtrace_asn_lookups_total", "counter", "AS number look-ups of hop addresses.",
              l.asn_lookups);
  page.single("nfqtrace_asn_lookup_failures_total", "counter",
              "AS number look-ups that found nothing or failed.", l.asn_failures);

  if (!r.top.empty()) {
    page.family("nfqtrace_prefix_traces_total", "counter",
                "Traces ended per destination prefix, the --metrics-top most traced "
                "(an upper bound for a prefix that replaced another).");
    for (const auto& p : r.top) page.sample("nfqtrace_prefix_traces_total", label("prefix", p.prefix), p.traces);
    page.family("nfqtrace_prefix_traces_reached_total", "counter",
                "Traces that reached the destination, per --metrics-top prefix.");
    for (const auto& p : r.top)
      page.sample("nfqtrace_prefix_traces_reached_total", label("prefix", p.prefix), p.reached);
    page.family("nfqtrace_prefix_last_hops", "gauge",
                "Hops of the latest trace to each --metrics-top prefix.");
    for (const auto& p : r.top) page.sample("nfqtrace_prefix_last_hops", label("prefix", p.prefix), p.last_hops);
  }
  return page.take();
}

}  // namespace nfqtrace::cli
