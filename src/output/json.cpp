#include "nfqtrace/output/format.hpp"

#include <fmt/format.h>

#include "values.hpp"

#include <cmath>
#include <ctime>

namespace nfqtrace::output {

using nlohmann::json;

std::string rfc3339(core::Duration since_epoch) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count();
  std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  long frac = static_cast<long>(us % 1'000'000);
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, frac);
}

double to_ms(core::Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return static_cast<double>(us) / 1000.0;
}

json flow_json(const core::FlowKey& flow) {
  return json{{"src", flow.src.to_string()},
              {"sport", flow.sport},
              {"dst", flow.dst.to_string()},
              {"dport", flow.dport}};
}

namespace {

json changes_json(const core::FieldSet& fields) {
  json names = json::array();
  for (std::size_t i = 0; i < core::field_count; ++i) {
    const auto field = static_cast<core::Field>(i);
    if (fields.contains(field)) names.push_back(std::string(core::to_string(field)));
  }
  return names;
}

json mpls_json(const std::vector<wire::MplsEntry>& stack) {
  json entries = json::array();
  for (const wire::MplsEntry& e : stack)
    entries.push_back(json{{"label", e.label}, {"tc", e.tc}, {"s", e.bottom ? 1 : 0}, {"ttl", e.ttl}});
  return entries;
}

json field_value_json(const core::FieldValue& value) {
  if (const auto* n = std::get_if<std::uint64_t>(&value)) return *n;
  if (const auto* a = std::get_if<wire::Address>(&value)) return a->to_string();
  return detail::hex(std::get<std::vector<std::uint8_t>>(value));
}

json nat_json(const core::Nat& nat) {
  json j = json::object();
  if (nat.first_seen_ttl) {
    j["first_seen_ttl"] = *nat.first_seen_ttl;
    j["evidence"] = nat.evidence;
  }
  if (!nat.client_sees.empty()) j["client_sees"] = nat.client_sees;
  if (!nat.server_sees.empty()) j["server_sees"] = nat.server_sees;
  return j;
}

json findings_json(const core::TraceResult& t) {
  json middleboxes = json::array();
  for (const core::Middlebox& m : t.middleboxes) {
    middleboxes.push_back(json{{"field", std::string(core::to_string(m.field))},
                               {"first_seen_ttl", m.first_seen_ttl},
                               {"sent", field_value_json(m.sent)},
                               {"seen", field_value_json(m.seen)}});
  }
  json rewrites = json::array();
  for (const core::Rewrite& r : t.rewrites) {
    rewrites.push_back(json{{"field", std::string(core::to_string(r.field))},
                            {"offset", r.offset},
                            {"first_seen_ttl", r.first_seen_ttl}});
  }
  json j{{"middleboxes", middleboxes}, {"rewrites", rewrites}};
  if (t.nat) j["nat"] = nat_json(*t.nat);
  if (t.loss_from_ttl) j["loss_from_ttl"] = *t.loss_from_ttl;
  if (t.reached && !t.hops.empty()) j["forward_hops"] = t.hops.back().ttl;
  if (t.return_hops) j["return_hops"] = *t.return_hops;
  return j;
}

// What `book` knows of `addr` now, into `j`.
void address_fields(json& j, const wire::Address& addr, const AddressBook* book) {
  if (book == nullptr) return;
  const AddressInfo* info = book->find(addr);
  if (info == nullptr) return;
  if (!info->name.empty()) j["name"] = info->name;
  if (info->asn) j["asn"] = *info->asn;
  if (!info->as_name.empty()) j["as_name"] = info->as_name;
}

json reply_fields(const core::Reply& r, const AddressBook* book) {
  json j{{"addr", r.addr.to_string()},
         {"rtt_ms", to_ms(r.rtt)},
         {"time", rfc3339(r.at.wall)},
         {"kind", std::string(core::to_string(r.kind))}};
  if (r.kind == core::ReplyKind::unreachable) j["icmp_code"] = r.icmp_code;
  if (r.reply_ttl != 0) {
    j["reply_ttl"] = r.reply_ttl;
    if (const auto back = core::hops_travelled(r.reply_ttl)) j["return_hops"] = *back;
  }
  if (r.kind != core::ReplyKind::destination) {
    j["quoted_ttl"] = r.quoted_ttl;
    j["changes"] = changes_json(r.changes);
  }
  if (!r.mpls.empty()) j["mpls"] = mpls_json(r.mpls);
  if (r.late) j["late"] = true;
  address_fields(j, r.addr, book);
  return j;
}

}  // namespace

json hop_json(const core::HopEvent& hop, const AddressBook* book) {
  json j{{"type", "hop"}, {"flow", flow_json(hop.flow)}, {"round", hop.round}, {"ttl", hop.ttl}};
  j.update(reply_fields(hop.reply, book));
  return j;
}

json trace_json(const core::TraceResult& t, const AddressBook* book) {
  json hops = json::array();
  for (const core::Hop& h : t.hops) {
    json replies = json::array();
    for (const core::Reply& r : h.replies) replies.push_back(reply_fields(r, book));
    json hop{{"ttl", h.ttl},
             {"probes", h.probes_sent},
             {"answered", h.replies.size()},
             {"replies", replies}};
    if (h.silent != core::Silence::none) hop["silent"] = std::string(core::to_string(h.silent));
    if (h.inferred_from) {
      hop["inferred_from"] =
          json{{"flow", flow_json(h.inferred_from->flow)}, {"round", h.inferred_from->round}};
    }
    hops.push_back(std::move(hop));
  }
  json j{{"type", "trace"},
         {"flow", flow_json(t.flow)},
         {"round", t.round},
         {"mode", std::string(core::to_string(t.mode))},
         {"start", rfc3339(t.start.wall)},
         {"end", rfc3339(t.end.wall)},
         {"reached", t.reached},
         {"reason", std::string(core::to_string(t.reason))},
         {"probes_sent", t.probes_sent},
         {"hops", hops}};
  j.update(findings_json(t));
  return j;
}

json path_change_json(const core::PathChange& c) {
  const auto addresses = [](const std::vector<wire::Address>& list) {
    json out = json::array();
    for (const wire::Address& a : list) out.push_back(a.to_string());
    return out;
  };
  json changes = json::array();
  for (const auto& at : c.changes)
    changes.push_back(json{{"ttl", at.ttl}, {"from", addresses(at.from)}, {"to", addresses(at.to)}});
  return json{{"type", "path_change"},
              {"flow", flow_json(c.flow)},
              {"round", c.round},
              {"previous_round", c.previous_round},
              {"changes", changes}};
}

}  // namespace nfqtrace::output
