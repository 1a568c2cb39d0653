#include <fmt/format.h>

#include <algorithm>

#include "nfqtrace/output/format.hpp"
#include "values.hpp"

namespace nfqtrace::output {
namespace {

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

// What a field is called in a sentence.
std::string_view field_words(core::Field f) {
  switch (f) {
    case core::Field::ip_dscp:
    case core::Field::ip6_dscp: return "DSCP";
    case core::Field::ip_ecn:
    case core::Field::ip6_ecn: return "ECN";
    case core::Field::ip_id: return "IP ID";
    case core::Field::ip_df: return "DF";
    case core::Field::ip_len: return "IP length";
    case core::Field::ip6_flow_label: return "flow label";
    case core::Field::ip6_plen: return "payload length";
    case core::Field::ip_src: return "source address";
    case core::Field::ip_dst: return "destination address";
    case core::Field::tcp_sport: return "source port";
    case core::Field::tcp_dport: return "destination port";
    case core::Field::tcp_seq: return "sequence number";
    case core::Field::tcp_ack: return "acknowledgement number";
    case core::Field::tcp_window: return "window";
    case core::Field::tcp_flags: return "TCP flags";
    case core::Field::tcp_options: return "TCP options";
    case core::Field::tcp_checksum: return "TCP checksum";
    case core::Field::payload: return "payload";
  }
  return "field";
}

// Where a change first seen in the quote at `ttl` was made.
std::string between(std::uint8_t ttl) {
  return ttl <= 1 ? std::string("between this host and hop 1")
                  : fmt::format("between hop {} and hop {}", ttl - 1, ttl);
}

// mtr's way: [MPLS: Lbl 24001 TC 0 S 1 TTL 1], one per stack entry.
std::string mpls_text(const std::vector<wire::MplsEntry>& stack) {
  std::string out;
  for (const wire::MplsEntry& e : stack)
    out += fmt::format(" [MPLS: Lbl {} TC {} S {} TTL {}]", e.label, e.tc, e.bottom ? 1 : 0, e.ttl);
  return out;
}

// "name (addr) [AS64500]" from what `book` knows now; the address alone
// without it.
std::string address_text(const wire::Address& addr, const AddressBook* book) {
  const AddressInfo* info = book != nullptr ? book->find(addr) : nullptr;
  if (info == nullptr) return addr.to_string();
  std::string out = info->name.empty() ? addr.to_string()
                                       : fmt::format("{} ({})", info->name, addr.to_string());
  if (info->asn) out += fmt::format(" [AS{}]", *info->asn);
  return out;
}

}  // namespace

std::string findings_text(const core::TraceResult& t) {
  std::string out;
  for (const core::Rewrite& r : t.rewrites) {
    out += fmt::format("  sequence numbers shifted by {} (mod 2^32) {}\n", r.offset,
                       between(r.first_seen_ttl));
  }
  for (const core::Middlebox& m : t.middleboxes) {
    // A shift is said above; the checksum follows whatever changed.
    if (m.field == core::Field::tcp_seq && !t.rewrites.empty()) continue;
    out += fmt::format("  {} {} -> {} {}\n", field_words(m.field), detail::value_text(m.sent),
                       detail::value_text(m.seen), between(m.first_seen_ttl));
  }
  if (t.nat) {
    if (t.nat->first_seen_ttl)
      out += fmt::format("  NAT: {} (first seen at hop {})\n", t.nat->evidence, *t.nat->first_seen_ttl);
    if (!t.nat->client_sees.empty() || !t.nat->server_sees.empty())
      out += fmt::format("  NAT: the client is {}, the server sees it as {}\n", t.nat->client_sees,
                         t.nat->server_sees);
  }
  if (t.loss_from_ttl) out += fmt::format("  probes lost from hop {} on\n", *t.loss_from_ttl);
  return out;
}

std::string endpoint_text(const wire::Address& a, std::uint16_t port) {
  return a.family == wire::Family::v6 ? fmt::format("[{}]:{}", a.to_string(), port)
                                      : fmt::format("{}:{}", a.to_string(), port);
}

std::string flow_text(const core::FlowKey& flow) {
  return endpoint_text(flow.src, flow.sport) + " -> " + endpoint_text(flow.dst, flow.dport);
}

std::string trace_text(const core::TraceResult& t, const AddressBook* book) {
  const std::string back = t.return_hops ? fmt::format(" (back: {})", *t.return_hops) : "";
  std::string out = fmt::format(
      "trace {} round {} ({}): {}, {} hop{}{}, {} probes, {:.3f} s\n", flow_text(t.flow), t.round,
      core::to_string(t.mode), core::to_string(t.reason), t.hops.size(),
      t.hops.size() == 1 ? "" : "s", back, t.probes_sent,
      std::chrono::duration<double>(t.end.mono - t.start.mono).count());
  for (const core::Hop& h : t.hops) {
    std::string line = fmt::format("{:3d} ", h.ttl);
    if (h.replies.empty()) {
      for (unsigned i = 0; i < std::max<unsigned>(h.probes_sent, 1); ++i) line += " *";
      // Taken for silent without waiting: later TTLs answered first.
      if (h.silent == core::Silence::inferred) line += "  [silent: later hops answered]";
    }
    // Like traceroute: an address, then the RTTs of the replies it sent.
    const wire::Address* last = nullptr;
    for (const core::Reply& r : h.replies) {
      if (!last || *last != r.addr) {
        line += fmt::format(" {}", address_text(r.addr, book));
        last = &r.addr;
      }
      line += fmt::format("  {:.3f} ms{}{}{}", to_ms(r.rtt), unreachable_mark(r), r.late ? " (late)" : "",
                          mpls_text(r.mpls));
    }
    if (!h.replies.empty() && h.replies.front().kind == core::ReplyKind::destination)
      line += "  [destination]";
    if (h.inferred_from) {
      line += fmt::format("  [not probed: as traced for {} round {}]",
                          flow_text(h.inferred_from->flow), h.inferred_from->round);
    }
    out += line + "\n";
  }
  return out + findings_text(t);
}

std::string path_change_text(const core::PathChange& c) {
  const auto addresses = [](const std::vector<wire::Address>& list) {
    if (list.empty()) return std::string("*");
    std::string out;
    for (const wire::Address& a : list) {
      if (!out.empty()) out += ',';
      out += a.to_string();
    }
    return out;
  };
  std::string out = fmt::format("path change {} round {} (since round {}):", flow_text(c.flow),
                                c.round, c.previous_round);
  for (const auto& at : c.changes)
    out += fmt::format(" ttl {} {} -> {};", at.ttl, addresses(at.from), addresses(at.to));
  out.back() = '\n';
  return out;
}

}  // namespace nfqtrace::output
