#include "summary.hpp"

#include <fmt/format.h>

#include <utility>
#include <vector>

namespace nfqtrace::cli {
namespace {

using Part = std::pair<std::string_view, std::uint64_t>;

// "what: reason 3, reason 1" with the reasons that counted anything.
void add_group(std::vector<std::string>& groups, std::string_view what,
               const std::vector<Part>& parts) {
  std::string text;
  for (const auto& [reason, n] : parts) {
    if (n == 0) continue;
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", reason, n);
  }
  if (!text.empty()) groups.push_back(fmt::format("{}: {}", what, text));
}

std::vector<Part> by_reason(const wire::ParseErrorCounts& counts) {
  std::vector<Part> parts;
  for (std::size_t i = 0; i < counts.by_reason.size(); ++i)
    parts.emplace_back(wire::to_string(static_cast<wire::ParseError>(i)), counts.by_reason[i]);
  return parts;
}

}  // namespace

std::string run_summary(std::string_view tool, const runtime::Tracer& tracer) {
  const auto& e = tracer.engine_counters();
  const auto& r = tracer.counters();
  std::string text = fmt::format(
      "{}: {} traces, {} packets seen, {} probes sent, {} waves of probes, {} replies matched, "
      "{} ICMP unmatched, {} peer confirmations, {} flows sent past the queue after "
      "their trace, {} flows waited for a place ({} of them past the queue), "
      "{} probe send errors\n",
      tool, tracer.traces_reported(), e.packets, e.probes_sent, e.waves, e.icmp_matched,
      e.icmp_unmatched() + r.icmp_unreadable.total(), e.peer_evidence, e.flows_skipped,
      e.flows_refused, e.flows_waited_past, r.probe_send_errors);
  if (e.flows_watched > 0) {
    text += fmt::format(
        "{}: --trigger retransmit: {} connections watched, {} of their packets copied to us "
        "past the queue, {} retransmissions seen, {} traces began with one\n",
        tool, e.flows_watched, e.packets_logged, e.retransmissions, e.traces_triggered);
  }
  if (r.log_copies_lost > 0) {
    text += fmt::format(
        "{}: {} packet copies lost: the log's socket buffer was full (nfqtrace did not see "
        "them; the packets themselves went on)\n",
        tool, r.log_copies_lost);
  }
  std::vector<std::string> groups;
  add_group(groups, "ICMP naming no probe",
            {{"no_traced_flow", e.icmp_no_flow},
             {"between_traces", e.icmp_no_trace},
             {"no_such_probe", e.icmp_no_probe},
             {"repeated", e.icmp_repeated},
             {"unconfirmed_shift", e.icmp_unconfirmed},
             {"bad_extensions", e.icmp_bad_extensions}});
  add_group(groups, "unreadable ICMP", by_reason(r.icmp_unreadable));
  add_group(groups, "unreadable queued packets", by_reason(r.queue_unreadable));
  add_group(groups, "unreadable copied packets", by_reason(r.copy_unreadable));
  add_group(groups, "unreadable peer packets", by_reason(r.peer_unreadable));
  add_group(groups, "peer resets", {{"off_the_window", e.peer_resets_rejected}});
  if (!groups.empty()) {
    text += fmt::format("{}: refused:", tool);
    for (std::size_t i = 0; i < groups.size(); ++i)
      text += fmt::format("{} {}", i == 0 ? "" : ";", groups[i]);
    text += "\n";
  }
  return text;
}

}  // namespace nfqtrace::cli
