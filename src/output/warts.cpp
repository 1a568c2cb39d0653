// warts(5) records, written from the format's published description.
#include "nfqtrace/output/warts.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace nfqtrace::output {

namespace {

using Bytes = std::vector<std::uint8_t>;

void put8(Bytes& out, std::uint8_t v) { out.push_back(v); }
void put16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put32(Bytes& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v));
}
void put_string(Bytes& out, const std::string& s) {
  out.insert(out.end(), s.begin(), s.end());
  out.push_back(0);  // warts strings keep their terminating NUL
}

std::uint32_t unix_seconds(core::Duration since_epoch) {
  return static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
}

// A timeval: seconds, then microseconds within the second.
void put_timeval(Bytes& out, core::Duration since_epoch) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count();
  put32(out, static_cast<std::uint32_t>(us / 1'000'000));
  put32(out, static_cast<std::uint32_t>(us % 1'000'000));
}

// Truncated to the microsecond, as the JSON output's rtt_ms is.
std::uint32_t rtt_us(core::Duration rtt) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(rtt).count();
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(us, 0, UINT32_MAX));
}

std::uint16_t saturate16(std::size_t n) { return static_cast<std::uint16_t>(std::min<std::size_t>(n, UINT16_MAX)); }

// The addresses a record embeds: the first time in full (length, type,
// bytes), after that as a reference to its place in the record's table
// (0, then the 32-bit index). A reader's table lasts one record, its hop
// records included.
class AddressTable {
 public:
  void put(Bytes& out, const wire::Address& addr) {
    const auto seen = std::find(table_.begin(), table_.end(), addr);
    if (seen != table_.end()) {
      put8(out, 0);
      put32(out, static_cast<std::uint32_t>(seen - table_.begin()));
      return;
    }
    table_.push_back(addr);
    put8(out, static_cast<std::uint8_t>(addr.size()));
    put8(out, addr.family == wire::Family::v4 ? 0x01 : 0x02);
    const auto bytes = addr.view();
    out.insert(out.end(), bytes.begin(), bytes.end());
  }

 private:
  std::vector<wire::Address> table_;
};

// Flags and parameters: the flags say which numbered parameters follow
// (seven to a byte, the lowest bit first, the top bit linking to a further
// byte), then the parameters' length, then the parameters in flag order.
class Params {
 public:
  // Parameters are added in increasing flag order; `field` writes one.
  template <typename Write>
  void add(unsigned flag, Write&& field) {
    flags_.push_back(flag);
    std::forward<Write>(field)(data_);
  }

  void write(Bytes& out) const {
    if (flags_.empty()) {
      put8(out, 0);
      return;
    }
    const unsigned highest = flags_.back();
    Bytes bits((highest - 1) / 7 + 1, 0);
    for (unsigned flag : flags_) bits[(flag - 1) / 7] |= static_cast<std::uint8_t>(1u << ((flag - 1) % 7));
    for (std::size_t i = 0; i + 1 < bits.size(); ++i) bits[i] |= 0x80;
    out.insert(out.end(), bits.begin(), bits.end());
    put16(out, saturate16(data_.size()));
    out.insert(out.end(), data_.begin(), data_.end());
  }


 private:
  std::vector<unsigned> flags_;
  Bytes data_;
};

// The 8-byte object header, then the object.
Bytes record(std::uint16_t type, const Bytes& body) {
  Bytes out;
  out.reserve(8 + body.size());
  put16(out, warts::magic);
  put16(out, type);
  put32(out, static_cast<std::uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// Both are the first of their kind in the file, numbered from 1 as warts
// numbers them; traces refer to them.
constexpr std::uint32_t list_id = 1, cycle_id = 1;

std::pair<std::uint8_t, std::uint8_t> icmp_type_code(const core::Reply& r, wire::Family family) {
  const bool v4 = family == wire::Family::v4;
  if (r.kind == core::ReplyKind::unreachable) return {v4 ? 3 : 1, r.icmp_code};
  return {v4 ? 11 : 3, 0};  // time exceeded in transit
}

// The label stack as one ICMP extension object (class 1, type 1: RFC 4950),
// each entry label(20) TC(3) S(1) TTL(8); after the extensions' total length,
// each extension: its data length, class, type, data.
void put_mpls(Bytes& out, const std::vector<wire::MplsEntry>& stack) {
  const auto data_length = static_cast<std::uint16_t>(4 * stack.size());
  put16(out, static_cast<std::uint16_t>(4 + data_length));
  put16(out, data_length);
  put8(out, 1);
  put8(out, 1);
  for (const wire::MplsEntry& e : stack) {
    put32(out, (e.label & 0xFFFFFu) << 12 | static_cast<std::uint32_t>(e.tc & 0x7) << 9 |
                   (e.bottom ? 1u : 0u) << 8 | e.ttl);
  }
}

void put_hop(Bytes& out, AddressTable& addresses, std::uint8_t ttl, std::uint8_t attempt,
             const core::Reply& r, wire::Family family, std::optional<std::uint16_t> probe_size) {
  const bool tcp = r.kind == core::ReplyKind::destination;
  std::uint8_t hop_flags = tcp ? warts::hop_flag_tcp : 0;
  if (r.reply_ttl != 0) hop_flags |= warts::hop_flag_reply_ttl;

  Params p;
  p.add(2, [&](Bytes& d) { put8(d, ttl); });
  if (r.reply_ttl != 0) p.add(3, [&](Bytes& d) { put8(d, r.reply_ttl); });
  p.add(4, [&](Bytes& d) { put8(d, hop_flags); });
  p.add(5, [&](Bytes& d) { put8(d, attempt); });
  p.add(6, [&](Bytes& d) { put32(d, rtt_us(r.rtt)); });
  if (!tcp) {
    const auto type_code = icmp_type_code(r, family);  // not a structured binding: lambdas capture it
    p.add(7, [&](Bytes& d) {
      put8(d, type_code.first);
      put8(d, type_code.second);
    });
  }
  if (probe_size) p.add(8, [&](Bytes& d) { put16(d, *probe_size); });
  if (!tcp) p.add(14, [&](Bytes& d) { put8(d, r.quoted_ttl); });
  // The peer answers a probe (a copy of a segment it has, or one beyond
  // what it was sent) with an acknowledgement.
  if (tcp) p.add(15, [&](Bytes& d) { put8(d, warts::tcp_ack); });
  if (!r.mpls.empty()) p.add(17, [&](Bytes& d) { put_mpls(d, r.mpls); });
  p.add(18, [&](Bytes& d) { addresses.put(d, r.addr); });
  p.write(out);
}

}  // namespace

std::uint8_t warts::stop_reason(const core::TraceResult& t) {
  if (t.reached) return stop_completed;
  for (auto hop = t.hops.rbegin(); hop != t.hops.rend(); ++hop) {
    if (hop->replies.empty()) continue;
    if (hop->replies.back().kind == core::ReplyKind::unreachable) return stop_unreach;
    break;
  }
  switch (t.reason) {
    case core::StopReason::reached: return stop_completed;
    case core::StopReason::gaplimit: return stop_gaplimit;
    case core::StopReason::maxttl: return stop_hoplimit;
    case core::StopReason::closed:
    case core::StopReason::stopped: return stop_halted;
  }
  return stop_halted;
}

WartsWriter::WartsWriter(WartsFileInfo info) : info_(std::move(info)) {}

std::vector<std::uint8_t> WartsWriter::file_start() const {
  Bytes list;
  put32(list, list_id);
  put32(list, 0);  // the list's number as a person gave it: none
  put_string(list, info_.list_name);
  Params list_params;
  if (!info_.description.empty()) list_params.add(1, [&](Bytes& d) { put_string(d, info_.description); });
  if (!info_.monitor.empty()) list_params.add(2, [&](Bytes& d) { put_string(d, info_.monitor); });
  list_params.write(list);

  Bytes cycle;
  put32(cycle, cycle_id);
  put32(cycle, list_id);
  put32(cycle, 0);  // the cycle's number as a person gave it: none
  put32(cycle, unix_seconds(info_.start));
  Params cycle_params;
  if (!info_.monitor.empty()) cycle_params.add(2, [&](Bytes& d) { put_string(d, info_.monitor); });
  cycle_params.write(cycle);

  Bytes out = record(warts::type_list, list);
  const Bytes second = record(warts::type_cycle_start, cycle);
  out.insert(out.end(), second.begin(), second.end());
  return out;
}

std::vector<std::uint8_t> WartsWriter::file_end(core::Duration stop) const {
  Bytes cycle;
  put32(cycle, cycle_id);
  put32(cycle, unix_seconds(stop));
  put8(cycle, 0);  // no flags
  return record(warts::type_cycle_stop, cycle);
}

std::vector<std::uint8_t> WartsWriter::trace(const core::TraceResult& t,
                                             std::optional<std::uint16_t> probe_size) const {
  std::uint8_t highest_ttl = 0, attempts = 0, unreach_code = 0;
  std::size_t replies = 0;
  for (const core::Hop& hop : t.hops) {
    highest_ttl = std::max(highest_ttl, hop.ttl);
    attempts = std::max(attempts, hop.probes_sent);
    replies += hop.replies.size();
    if (!hop.replies.empty()) unreach_code = hop.replies.back().icmp_code;
  }
  const std::uint8_t stop = warts::stop_reason(t);
  const wire::Family family = t.flow.family();

  Bytes body;
  AddressTable addresses;  // one for the whole record, its hops included
  Params p;
  p.add(1, [&](Bytes& d) { put32(d, list_id); });
  p.add(2, [&](Bytes& d) { put32(d, cycle_id); });
  p.add(5, [&](Bytes& d) { put_timeval(d, t.start.wall); });
  p.add(6, [&](Bytes& d) { put8(d, stop); });
  // Stop data: the ICMP code, for an unreachable.
  p.add(7, [&](Bytes& d) { put8(d, stop == warts::stop_unreach ? unreach_code : 0); });
  p.add(9, [&](Bytes& d) { put8(d, attempts); });
  p.add(11, [&](Bytes& d) { put8(d, warts::trace_type_tcp_ack); });
  if (probe_size) p.add(12, [&](Bytes& d) { put16(d, *probe_size); });
  p.add(13, [&](Bytes& d) { put16(d, t.flow.sport); });
  p.add(14, [&](Bytes& d) { put16(d, t.flow.dport); });
  p.add(15, [&](Bytes& d) { put8(d, 1); });  // the first TTL probed
  // How far it probed: readers size their table of TTLs by it.
  p.add(19, [&](Bytes& d) { put16(d, highest_ttl); });
  p.add(23, [&](Bytes& d) { put16(d, saturate16(t.probes_sent)); });
  p.add(26, [&](Bytes& d) { addresses.put(d, t.flow.src); });
  p.add(27, [&](Bytes& d) { addresses.put(d, t.flow.dst); });
  p.write(body);

  put16(body, saturate16(replies));
  for (const core::Hop& hop : t.hops) {
    // The reply's place among its TTL's, from 0: readers show it plus one.
    std::uint8_t attempt = 0;
    for (const core::Reply& r : hop.replies) put_hop(body, addresses, hop.ttl, attempt++, r, family, probe_size);
  }
  put16(body, 0);  // the end of the record: no optional data follows
  return record(warts::type_trace, body);
}

}  // namespace nfqtrace::output
