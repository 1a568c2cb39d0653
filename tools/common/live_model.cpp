#include "live_model.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "nfqtrace/core/quote_diff.hpp"
#include "nfqtrace/output/format.hpp"

namespace nfqtrace::cli {
namespace {

double ms(core::Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string field_list(const core::FieldSet& fields) {
  std::string out;
  for (std::size_t i = 0; i < core::field_count; ++i) {
    const auto f = static_cast<core::Field>(i);
    if (!fields.contains(f)) continue;
    if (!out.empty()) out += ',';
    out += core::to_string(f);
  }
  return out;
}

std::string_view direction_word(Direction d) {
  return d == Direction::forward ? " forward" : d == Direction::reverse ? " reverse" : "";
}

}  // namespace

LiveModel::FlowStats& LiveModel::flow(const core::FlowKey& key, Direction direction) {
  auto it = std::find_if(flows_.begin(), flows_.end(), [&](const FlowStats& f) {
    return f.flow == key && f.direction == direction;
  });
  if (it != flows_.end()) return *it;
  FlowStats& added = flows_.emplace_back();
  added.flow = key;
  added.direction = direction;
  return added;
}

void LiveModel::hop(const core::HopEvent& hop, Direction direction) {
  FlowStats& f = flow(hop.flow, direction);
  if (hop.round != f.round) {
    f.round = hop.round;
    f.ended = false;
  }
  TtlStats& t = f.ttls[hop.ttl];
  const core::Reply& r = hop.reply;
  if (std::find(t.addrs.begin(), t.addrs.end(), r.addr) == t.addrs.end()) t.addrs.push_back(r.addr);
  const double rtt = ms(r.rtt);
  t.best_ms = t.replies == 0 ? rtt : std::min(t.best_ms, rtt);
  t.worst_ms = t.replies == 0 ? rtt : std::max(t.worst_ms, rtt);
  t.last_ms = rtt;
  t.sum_ms += rtt;
  ++t.replies;
  t.destination = t.destination || r.kind == core::ReplyKind::destination;
  t.mpls = t.mpls || !r.mpls.empty();
  if (!r.changes.empty()) t.changes = field_list(r.changes);
}

void LiveModel::trace(const core::TraceResult& trace, Direction direction) {
  FlowStats& f = flow(trace.flow, direction);
  f.round = trace.round;
  f.ended = true;
  f.last_reason = std::string(core::to_string(trace.reason));
  for (const core::Hop& h : trace.hops) {
    TtlStats& t = f.ttls[h.ttl];
    t.sent += h.probes_sent;
    t.answered += static_cast<std::uint32_t>(std::min<std::size_t>(h.replies.size(), h.probes_sent));
  }
  // A path that got shorter: the TTLs beyond its end are no longer on it.
  if (!trace.hops.empty()) {
    const std::uint8_t last = trace.hops.back().ttl;
    std::erase_if(f.ttls, [&](const auto& entry) { return entry.first > last; });
  }
}

void LiveModel::path_change(const core::PathChange& change) {
  for (FlowStats& f : flows_) {
    if (f.flow != change.flow) continue;
    for (auto& t : f.ttls) t.second.changed_path = false;
    for (const auto& at : change.changes) f.ttls[at.ttl].changed_path = true;
  }
}

LiveModel::FlowView LiveModel::view(std::size_t index, const output::AddressBook* names,
                                    bool show_names) const {
  FlowView v;
  if (index >= flows_.size()) return v;
  const FlowStats& f = flows_[index];
  v.title = fmt::format("{}{}, round {} ({}{})", output::flow_text(f.flow),
                        direction_word(f.direction), f.round, f.ended ? "ended: " : "tracing",
                        f.ended ? f.last_reason : "");
  for (const auto& [ttl, t] : f.ttls) {
    Row row;
    row.ttl = ttl;
    if (t.addrs.empty()) {
      row.host = std::string(1, t.sent > 0 ? '*' : '?');  // silent, or not yet known
    }
    for (const wire::Address& a : t.addrs) {
      const output::AddressInfo* info = names ? names->find(a) : nullptr;
      if (!row.host.empty()) row.host += ' ';
      if (show_names && info && !info->name.empty()) {
        row.host += fmt::format("{} ({})", info->name, a.to_string());
      } else {
        row.host += a.to_string();
      }
      if (info && info->asn && row.as.empty()) row.as = fmt::format("AS{}", *info->asn);
    }
    row.sent = t.sent;
    row.answered = t.answered;
    if (t.sent > 0) row.loss_pct = 100.0 * (t.sent - std::min(t.answered, t.sent)) / t.sent;
    if (t.replies > 0) {
      row.last_ms = t.last_ms;
      row.avg_ms = t.sum_ms / t.replies;
      row.best_ms = t.best_ms;
      row.worst_ms = t.worst_ms;
    }
    std::vector<std::string> notes;
    if (t.destination) notes.emplace_back("destination");
    if (t.mpls) notes.emplace_back("MPLS");
    if (!t.changes.empty()) notes.push_back(fmt::format("changed {}", t.changes));
    if (t.changed_path) notes.emplace_back("PATH CHANGED");
    for (const std::string& n : notes) {
      if (!row.notes.empty()) row.notes += "; ";
      row.notes += n;
    }
    v.rows.push_back(std::move(row));
  }
  return v;
}

}  // namespace nfqtrace::cli
