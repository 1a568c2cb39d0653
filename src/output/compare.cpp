#include "nfqtrace/output/compare.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "nfqtrace/output/format.hpp"

namespace nfqtrace::output {
namespace {

constexpr std::size_t column_width = 36;

std::set<wire::Address> router_addresses(const core::TraceResult& t) {
  std::set<wire::Address> out;
  for (const core::Hop& h : t.hops)
    for (const core::Reply& r : h.replies)
      if (r.kind != core::ReplyKind::destination) out.insert(r.addr);
  return out;
}

// "10.0.1.1  0.210 ms" (the fastest reply), "*" when silent, with the peer marked.
std::string cell(const core::TraceResult& t, std::size_t index) {
  if (index >= t.hops.size()) return "";
  const core::Hop& h = t.hops[index];
  if (h.replies.empty()) return "*";
  const core::Reply& first = h.replies.front();
  core::Duration best = first.rtt;
  for (const core::Reply& r : h.replies) best = std::min(best, r.rtt);
  std::string text = fmt::format("{}  {:.3f} ms", first.addr.to_string(), to_ms(best));
  if (first.kind == core::ReplyKind::destination) text += " [dest]";
  return text;
}

// A router address of one direction that the other direction never showed.
bool one_sided(const core::TraceResult& t, std::size_t index, const std::set<wire::Address>& other) {
  if (index >= t.hops.size()) return false;
  for (const core::Reply& r : t.hops[index].replies)
    if (r.kind != core::ReplyKind::destination && !other.count(r.addr)) return true;
  return false;
}

std::string summary(const char* direction, const core::TraceResult& t) {
  return fmt::format("{}  {}  {}, {} hop{}\n", direction, flow_text(t.flow), core::to_string(t.reason),
                     t.hops.size(), t.hops.size() == 1 ? "" : "s");
}

}  // namespace

std::string compare_text(const core::TraceResult& forward, const core::TraceResult& reverse) {
  std::string out = summary("forward", forward) + summary("reverse", reverse) + "\n";
  out += fmt::format("ttl  {:<{}}{}\n", "forward (client -> server)", column_width,
                     "reverse (server -> client)");
  const auto fwd_routers = router_addresses(forward), rev_routers = router_addresses(reverse);
  const std::size_t rows = std::max(forward.hops.size(), reverse.hops.size());
  bool any_mark = false;
  for (std::size_t i = 0; i < rows; ++i) {
    const bool mark = one_sided(forward, i, rev_routers) || one_sided(reverse, i, fwd_routers);
    any_mark |= mark;
    std::string line = fmt::format("{:3d}  {:<{}}{}", i + 1, cell(forward, i), column_width, cell(reverse, i));
    if (mark) line = fmt::format("{:<{}}  <>", line, 5 + 2 * column_width);
    out += line + "\n";
  }
  if (forward.reached && reverse.reached && forward.hops.size() != reverse.hops.size()) {
    out += fmt::format("\nThe paths differ: {} hops forward, {} back.\n", forward.hops.size(),
                       reverse.hops.size());
  }
  if (any_mark) {
    out += "\n<> a router address seen in one direction only (routers answer from the interface a\n"
           "   probe arrived on, so a symmetric path shows other addresses each way too).\n";
  }
  // What the path did to the connection, each way.
  for (const auto& [direction, trace] : {std::pair{"forward", &forward}, std::pair{"reverse", &reverse}}) {
    const std::string found = findings_text(*trace);
    if (!found.empty()) out += fmt::format("\n{}:\n{}", direction, found);
  }
  return out;
}

}  // namespace nfqtrace::output
