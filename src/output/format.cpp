#include "nfqtrace/output/format.hpp"

#include <fmt/format.h>

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

json reply_fields(const core::Reply& r) {
  json j{{"addr", r.addr.to_string()},
         {"rtt_ms", to_ms(r.rtt)},
         {"time", rfc3339(r.at.wall)},
         {"kind", std::string(core::to_string(r.kind))}};
  if (r.kind == core::ReplyKind::unreachable) j["icmp_code"] = r.icmp_code;
  if (r.reply_ttl != 0) j["reply_ttl"] = r.reply_ttl;
  if (r.kind != core::ReplyKind::destination) j["quoted_ttl"] = r.quoted_ttl;
  return j;
}

// traceroute's annotations for unreachable codes.
std::string unreachable_mark(const core::Reply& r) {
  if (r.kind != core::ReplyKind::unreachable) return "";
  if (r.addr.family == wire::Family::v4) {
    switch (r.icmp_code) {
      case 0: return " !N";
      case 1: return " !H";
      case 2: return " !P";
      case 9: case 10: case 13: return " !X";
      default: return fmt::format(" !<{}>", r.icmp_code);
    }
  }
  switch (r.icmp_code) {
    case 0: return " !N";
    case 1: return " !X";
    case 3: return " !H";
    case 4: return " !P";
    default: return fmt::format(" !<{}>", r.icmp_code);
  }
}

}  // namespace

json hop_json(const core::HopEvent& hop) {
  json j{{"type", "hop"}, {"flow", flow_json(hop.flow)}, {"round", hop.round}, {"ttl", hop.ttl}};
  j.update(reply_fields(hop.reply));
  return j;
}

json trace_json(const core::TraceResult& t) {
  json hops = json::array();
  for (const core::Hop& h : t.hops) {
    json replies = json::array();
    for (const core::Reply& r : h.replies) replies.push_back(reply_fields(r));
    json hop{{"ttl", h.ttl}, {"probes", h.probes_sent}, {"replies", replies}};
    if (h.inferred_from) {
      hop["inferred_from"] =
          json{{"flow", flow_json(h.inferred_from->flow)}, {"round", h.inferred_from->round}};
    }
    hops.push_back(std::move(hop));
  }
  return json{{"type", "trace"},
              {"flow", flow_json(t.flow)},
              {"round", t.round},
              {"mode", std::string(core::to_string(t.mode))},
              {"start", rfc3339(t.start.wall)},
              {"end", rfc3339(t.end.wall)},
              {"reached", t.reached},
              {"reason", std::string(core::to_string(t.reason))},
              {"probes_sent", t.probes_sent},
              {"hops", hops}};
}

std::string flow_text(const core::FlowKey& flow) {
  auto endpoint = [](const wire::Address& a, std::uint16_t port) {
    return a.family == wire::Family::v6 ? fmt::format("[{}]:{}", a.to_string(), port)
                                        : fmt::format("{}:{}", a.to_string(), port);
  };
  return endpoint(flow.src, flow.sport) + " -> " + endpoint(flow.dst, flow.dport);
}

std::string trace_text(const core::TraceResult& t) {
  std::string out = fmt::format(
      "trace {} round {} ({}): {}, {} hop{}, {} probes, {:.3f} s\n", flow_text(t.flow), t.round,
      core::to_string(t.mode), core::to_string(t.reason), t.hops.size(),
      t.hops.size() == 1 ? "" : "s", t.probes_sent,
      std::chrono::duration<double>(t.end.mono - t.start.mono).count());
  for (const core::Hop& h : t.hops) {
    std::string line = fmt::format("{:3d} ", h.ttl);
    if (h.replies.empty()) {
      for (unsigned i = 0; i < std::max<unsigned>(h.probes_sent, 1); ++i) line += " *";
    }
    // Like traceroute: an address, then the RTTs of the replies it sent.
    const wire::Address* last = nullptr;
    for (const core::Reply& r : h.replies) {
      if (!last || *last != r.addr) {
        line += fmt::format(" {}", r.addr.to_string());
        last = &r.addr;
      }
      line += fmt::format("  {:.3f} ms{}", to_ms(r.rtt), unreachable_mark(r));
    }
    if (!h.replies.empty() && h.replies.front().kind == core::ReplyKind::destination)
      line += "  [destination]";
    if (h.inferred_from) {
      line += fmt::format("  [not probed: as traced for {} round {}]",
                          flow_text(h.inferred_from->flow), h.inferred_from->round);
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace nfqtrace::output
