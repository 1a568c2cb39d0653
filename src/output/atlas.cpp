// RIPE Atlas traceroute results, from Atlas' published description of the
// result format and its example results.
#include "nfqtrace/output/atlas.hpp"

#include <chrono>

#include "nfqtrace/output/format.hpp"

namespace nfqtrace::output {

using nlohmann::json;

namespace {

std::int64_t unix_seconds(core::Duration since_epoch) {
  return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
}

// Atlas' letters for the unreachable codes it names (N: network, H: host,
// A: administratively prohibited, P: protocol, p: port), else the code.
json unreachable_err(std::uint8_t code, wire::Family family) {
  if (family == wire::Family::v4) {
    switch (code) {
      case 0: return "N";
      case 1: return "H";
      case 2: return "P";
      case 3: return "p";
      case 13: return "A";
      default: return code;
    }
  }
  switch (code) {
    case 0: return "N";  // no route to destination
    case 1: return "A";
    case 3: return "H";  // address unreachable
    case 4: return "p";
    default: return code;
  }
}

// RFC 4884 extensions as Atlas writes them: one object per extension object
// (class 1, type 1: an MPLS label stack, RFC 4950).
json icmpext_json(const std::vector<wire::MplsEntry>& stack) {
  json labels = json::array();
  for (const wire::MplsEntry& e : stack)
    labels.push_back(json{{"exp", e.tc}, {"label", e.label}, {"s", e.bottom ? 1 : 0}, {"ttl", e.ttl}});
  return json{{"version", 2},
              {"rfc4884", 1},
              {"obj", json::array({json{{"class", 1}, {"type", 1}, {"mpls", labels}}})}};
}

json reply_json(const core::Reply& r, wire::Family family) {
  json j{{"from", r.addr.to_string()}, {"rtt", to_ms(r.rtt)}};
  if (r.reply_ttl != 0) j["ttl"] = r.reply_ttl;
  if (r.kind == core::ReplyKind::destination) {
    // The peer acknowledges the probe (a copy of one of its segments).
    j["flags"] = "A";
  } else {
    if (r.kind == core::ReplyKind::unreachable) j["err"] = unreachable_err(r.icmp_code, family);
    // Atlas leaves out the quoted TTL when it is 1, as a router should quote.
    if (r.quoted_ttl != 1) j["ittl"] = r.quoted_ttl;
  }
  if (!r.mpls.empty()) j["icmpext"] = icmpext_json(r.mpls);
  return j;
}

}  // namespace

json atlas_json(const core::TraceResult& t, const AtlasContext& context) {
  const wire::Family family = t.flow.family();
  json hops = json::array();
  for (const core::Hop& hop : t.hops) {
    json results = json::array();
    for (const core::Reply& r : hop.replies) results.push_back(reply_json(r, family));
    std::size_t unanswered = hop.probes_sent > hop.replies.size() ? hop.probes_sent - hop.replies.size() : 0;
    if (hop.replies.empty() && unanswered == 0) unanswered = 1;
    for (std::size_t i = 0; i < unanswered; ++i) results.push_back(json{{"x", "*"}});
    hops.push_back(json{{"hop", hop.ttl}, {"result", results}});
  }
  json j{{"type", "traceroute"},
         {"fw", 5000},
         {"mver", context.version},
         {"lts", -1},
         {"af", family == wire::Family::v4 ? 4 : 6},
         {"src_addr", t.flow.src.to_string()},
         {"dst_addr", t.flow.dst.to_string()},
         {"dst_name", t.flow.dst.to_string()},
         {"proto", "TCP"},
         {"paris_id", 1},
         {"timestamp", unix_seconds(t.start.wall)},
         {"endtime", unix_seconds(t.end.wall)},
         {"from", context.from},
         {"msm_name", context.msm_name},
         {"result", hops}};
  if (context.probe_size) j["size"] = *context.probe_size;
  if (context.msm_id) j["msm_id"] = *context.msm_id;
  if (context.prb_id) j["prb_id"] = *context.prb_id;
  if (context.group_id) j["group_id"] = *context.group_id;
  return j;
}

}  // namespace nfqtrace::output
