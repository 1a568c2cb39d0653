#include "nfqtrace/output/parse.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

namespace nfqtrace::output {
namespace {

using nlohmann::json;

// The problem that ended the reading, named by its path in the document.
class Problems {
 public:
  bool fail(std::string_view path, std::string_view why) {
    what_ = fmt::format("{}: {}", path, why);
    return false;
  }
  std::string what() && { return std::move(what_); }

 private:
  std::string what_;
};

std::string join(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : fmt::format("{}.{}", prefix, key);
}

const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::optional<std::uint64_t> as_unsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer()) {
    const auto s = v.get<std::int64_t>();
    if (s >= 0) return static_cast<std::uint64_t>(s);
  }
  return std::nullopt;
}

// Reads object[key] into `out` when it is an integer that fits T. An absent
// optional field leaves `out` as it is.
template <typename T>
bool read_uint(const json& object, std::string_view prefix, const char* key, T& out,
               Problems& problems, bool required = true) {
  const json* v = member(object, key);
  if (!v) return required ? problems.fail(join(prefix, key), "missing") : true;
  const auto n = as_unsigned(*v);
  constexpr auto max = std::numeric_limits<T>::max();
  if (!n || *n > max)
    return problems.fail(join(prefix, key), fmt::format("must be an integer from 0 to {}", max));
  out = static_cast<T>(*n);
  return true;
}

const std::string* read_string(const json& object, std::string_view prefix, const char* key,
                               Problems& problems) {
  const json* v = member(object, key);
  if (!v || !v->is_string()) {
    problems.fail(join(prefix, key), v ? "must be a string" : "missing");
    return nullptr;
  }
  return v->get_ptr<const std::string*>();
}

bool read_address(const json& object, std::string_view prefix, const char* key,
                  wire::Address& out, Problems& problems) {
  const std::string* text = read_string(object, prefix, key, problems);
  if (!text) return false;
  const auto addr = wire::Address::parse(*text);
  if (!addr) return problems.fail(join(prefix, key), "must be an IPv4 or IPv6 address");
  out = *addr;
  return true;
}

bool read_time(const json& object, std::string_view prefix, const char* key, core::Instant& out,
               Problems& problems) {
  const std::string* text = read_string(object, prefix, key, problems);
  if (!text) return false;
  const auto wall = parse_rfc3339(*text);
  if (!wall) return problems.fail(join(prefix, key), "must be an RFC 3339 time");
  out = core::Instant{*wall, *wall};
  return true;
}

// Names as core::to_string writes them.
template <typename Enum, std::size_t N>
bool read_enum(const json& object, std::string_view prefix, const char* key,
               const std::array<Enum, N>& values, Enum& out, Problems& problems) {
  const std::string* text = read_string(object, prefix, key, problems);
  if (!text) return false;
  for (Enum e : values) {
    if (core::to_string(e) == *text) {
      out = e;
      return true;
    }
  }
  // The value itself is not repeated: it came from a peer, and may be long.
  std::string allowed;
  for (Enum e : values) {
    if (!allowed.empty()) allowed += ", ";
    allowed += core::to_string(e);
  }
  return problems.fail(join(prefix, key), "must be one of " + allowed);
}

constexpr std::array reply_kinds{core::ReplyKind::time_exceeded, core::ReplyKind::unreachable,
                                 core::ReplyKind::destination};
constexpr std::array stop_reasons{core::StopReason::reached, core::StopReason::gaplimit,
                                  core::StopReason::maxttl, core::StopReason::closed,
                                  core::StopReason::stopped};
constexpr std::array modes{core::Mode::dup, core::Mode::mangle};

bool require_object(const json& j, std::string_view path, Problems& problems) {
  if (j.is_object()) return true;
  return problems.fail(path.empty() ? "(top)" : path, "must be an object");
}

bool read_flow(const json& j, std::string_view path, core::FlowKey& out, Problems& problems) {
  if (!require_object(j, path, problems)) return false;
  core::FlowKey flow;
  if (!read_address(j, path, "src", flow.src, problems) ||
      !read_uint(j, path, "sport", flow.sport, problems) ||
      !read_address(j, path, "dst", flow.dst, problems) ||
      !read_uint(j, path, "dport", flow.dport, problems))
    return false;
  if (flow.src.family != flow.dst.family)
    return problems.fail(path.empty() ? "(top)" : path, "src and dst of different families");
  out = flow;
  return true;
}

bool read_flow_member(const json& object, std::string_view prefix, core::FlowKey& out,
                      Problems& problems) {
  const json* flow = member(object, "flow");
  if (!flow) return problems.fail(join(prefix, "flow"), "missing");
  return read_flow(*flow, join(prefix, "flow"), out, problems);
}

// "ip.dscp" -> Field::ip_dscp
std::optional<core::Field> field_named(std::string_view name) {
  for (std::size_t i = 0; i < core::field_count; ++i) {
    const auto f = static_cast<core::Field>(i);
    if (core::to_string(f) == name) return f;
  }
  return std::nullopt;
}

bool read_field(const json& object, std::string_view prefix, const char* key, core::Field& out,
                Problems& problems) {
  const std::string* name = read_string(object, prefix, key, problems);
  if (!name) return false;
  const auto f = field_named(*name);
  if (!f) return problems.fail(join(prefix, key), "not a field name");
  out = *f;
  return true;
}

// A value as json.cpp writes it: a number, an address, or bytes in hex.
bool read_value(const json& object, std::string_view prefix, const char* key,
                core::FieldValue& out, Problems& problems) {
  const json* v = member(object, key);
  if (v && v->is_number_unsigned()) {
    out = v->get<std::uint64_t>();
    return true;
  }
  if (!v || !v->is_string())
    return problems.fail(join(prefix, key), v ? "must be a number or a string" : "missing");
  const std::string& text = v->get_ref<const std::string&>();
  if (auto addr = wire::Address::parse(text)) {
    out = *addr;
    return true;
  }
  if (text == "none") {
    out = std::vector<std::uint8_t>{};
    return true;
  }
  const auto not_bytes = [&] {
    return problems.fail(join(prefix, key), "must be a number, an address or hex bytes");
  };
  if (text.size() % 2 != 0) return not_bytes();
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    unsigned byte = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + i + 2, byte, 16);
    if (ec != std::errc() || end != text.data() + i + 2) return not_bytes();
    bytes.push_back(static_cast<std::uint8_t>(byte));
  }
  out = std::move(bytes);
  return true;
}

// An optional array member: absent is empty.
const json* read_array(const json& object, std::string_view prefix, const char* key,
                       Problems& problems, bool& ok) {
  ok = true;
  const json* v = member(object, key);
  if (!v) return nullptr;
  if (!v->is_array()) ok = problems.fail(join(prefix, key), "must be an array");
  return ok ? v : nullptr;
}

// What the path did, as a reply shows it: "changes", "mpls" (both optional,
// so that an older peer's results read).
bool read_reply_findings(const json& j, std::string_view path, core::Reply& r, Problems& problems) {
  bool ok = true;
  if (const json* late = member(j, "late")) {
    if (!late->is_boolean()) return problems.fail(join(path, "late"), "must be true or false");
    r.late = late->get<bool>();
  }
  if (const json* changes = read_array(j, path, "changes", problems, ok)) {
    for (std::size_t i = 0; i < changes->size(); ++i) {
      const json& name = (*changes)[i];
      const auto f = name.is_string() ? field_named(name.get_ref<const std::string&>()) : std::nullopt;
      if (!f) return problems.fail(fmt::format("{}.changes[{}]", path, i), "not a field name");
      r.changes.add(*f);
    }
  }
  if (!ok) return false;
  if (const json* mpls = read_array(j, path, "mpls", problems, ok)) {
    for (std::size_t i = 0; i < mpls->size(); ++i) {
      const std::string at = fmt::format("{}.mpls[{}]", path, i);
      const json& e = (*mpls)[i];
      if (!require_object(e, at, problems)) return false;
      wire::MplsEntry entry;
      std::uint8_t bottom = 0;
      if (!read_uint(e, at, "label", entry.label, problems) || !read_uint(e, at, "tc", entry.tc, problems) ||
          !read_uint(e, at, "s", bottom, problems) || !read_uint(e, at, "ttl", entry.ttl, problems))
        return false;
      if (entry.label >= (1u << 20) || entry.tc > 7 || bottom > 1)
        return problems.fail(at, "not an MPLS label stack entry");
      entry.bottom = bottom == 1;
      r.mpls.push_back(entry);
    }
  }
  return ok;
}

// The fields output::hop_json and output::trace_json write for a reply.
bool read_reply(const json& j, std::string_view path, core::Reply& out, Problems& problems) {
  if (!require_object(j, path, problems)) return false;
  core::Reply r;
  if (!read_address(j, path, "addr", r.addr, problems)) return false;

  const json* rtt = member(j, "rtt_ms");
  // The upper bound keeps the conversion to nanoseconds from overflowing.
  if (!rtt || !rtt->is_number() || !std::isfinite(rtt->get<double>()) ||
      rtt->get<double>() < 0 || rtt->get<double>() > 1e12)
    return problems.fail(join(path, "rtt_ms"), rtt ? "must be a non-negative number" : "missing");
  // to_ms wrote whole microseconds: reading them back exactly round-trips.
  r.rtt = std::chrono::microseconds(std::llround(rtt->get<double>() * 1000.0));

  if (!read_time(j, path, "time", r.at, problems) ||
      !read_enum(j, path, "kind", reply_kinds, r.kind, problems) ||
      !read_uint(j, path, "icmp_code", r.icmp_code, problems, false) ||
      !read_uint(j, path, "reply_ttl", r.reply_ttl, problems, false) ||
      !read_uint(j, path, "quoted_ttl", r.quoted_ttl, problems, false) ||
      !read_reply_findings(j, path, r, problems))
    return false;
  out = std::move(r);
  return true;
}

// What the path did, as a trace tells it (every member optional).
bool read_trace_findings(const json& j, core::TraceResult& t, Problems& problems) {
  bool ok = true;
  if (const json* list = read_array(j, "", "middleboxes", problems, ok)) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string at = fmt::format("middleboxes[{}]", i);
      core::Middlebox m;
      if (!require_object((*list)[i], at, problems) ||
          !read_field((*list)[i], at, "field", m.field, problems) ||
          !read_uint((*list)[i], at, "first_seen_ttl", m.first_seen_ttl, problems) ||
          !read_value((*list)[i], at, "sent", m.sent, problems) ||
          !read_value((*list)[i], at, "seen", m.seen, problems))
        return false;
      t.middleboxes.push_back(std::move(m));
    }
  }
  if (!ok) return false;
  if (const json* list = read_array(j, "", "rewrites", problems, ok)) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string at = fmt::format("rewrites[{}]", i);
      core::Rewrite r;
      if (!require_object((*list)[i], at, problems) ||
          !read_field((*list)[i], at, "field", r.field, problems) ||
          !read_uint((*list)[i], at, "offset", r.offset, problems) ||
          !read_uint((*list)[i], at, "first_seen_ttl", r.first_seen_ttl, problems))
        return false;
      t.rewrites.push_back(r);
    }
  }
  if (!ok) return false;
  if (const json* nat = member(j, "nat")) {
    if (!require_object(*nat, "nat", problems)) return false;
    core::Nat n;
    if (member(*nat, "first_seen_ttl")) {
      std::uint8_t ttl = 0;
      const std::string* evidence = nullptr;
      if (!read_uint(*nat, "nat", "first_seen_ttl", ttl, problems) ||
          !(evidence = read_string(*nat, "nat", "evidence", problems)))
        return false;
      n.first_seen_ttl = ttl;
      n.evidence = *evidence;
    }
    for (auto [key, field] : {std::pair{"client_sees", &core::Nat::client_sees},
                              std::pair{"server_sees", &core::Nat::server_sees}}) {
      if (!member(*nat, key)) continue;
      const std::string* text = read_string(*nat, "nat", key, problems);
      if (!text) return false;
      n.*field = *text;
    }
    t.nat = std::move(n);
  }
  for (auto [key, field] : {std::pair{"loss_from_ttl", &core::TraceResult::loss_from_ttl},
                            std::pair{"return_hops", &core::TraceResult::return_hops}}) {
    if (!member(j, key)) continue;
    std::uint8_t value = 0;
    if (!read_uint(j, "", key, value, problems)) return false;
    t.*field = value;
  }
  return true;
}

bool read_hop(const json& j, std::string_view path, core::Hop& out, Problems& problems) {
  if (!require_object(j, path, problems)) return false;
  core::Hop hop;
  if (!read_uint(j, path, "ttl", hop.ttl, problems) ||
      !read_uint(j, path, "probes", hop.probes_sent, problems))
    return false;
  const json* replies = member(j, "replies");
  if (!replies || !replies->is_array())
    return problems.fail(join(path, "replies"), replies ? "must be an array" : "missing");
  hop.replies.reserve(replies->size());
  for (std::size_t i = 0; i < replies->size(); ++i) {
    core::Reply reply;
    if (!read_reply((*replies)[i], fmt::format("{}.replies[{}]", path, i), reply, problems))
      return false;
    hop.replies.push_back(reply);
  }
  if (member(j, "silent")) {
    constexpr std::array silences{core::Silence::inferred, core::Silence::timeout};
    if (!read_enum(j, path, "silent", silences, hop.silent, problems)) return false;
  }
  if (const json* from = member(j, "inferred_from")) {
    const std::string from_path = join(path, "inferred_from");
    if (!require_object(*from, from_path, problems)) return false;
    core::InferredFrom inferred;
    if (!read_flow_member(*from, from_path, inferred.flow, problems) ||
        !read_uint(*from, from_path, "round", inferred.round, problems))
      return false;
    hop.inferred_from = inferred;
  }
  out = std::move(hop);
  return true;
}

// "2026" -> 2026; nullopt unless exactly `len` digits.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t len) {
  if (pos + len > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool at(std::string_view s, std::size_t pos, char c) { return pos < s.size() && s[pos] == c; }

}  // namespace

std::optional<core::Mode> mode_from_string(std::string_view text) {
  for (core::Mode m : modes)
    if (core::to_string(m) == text) return m;
  return std::nullopt;
}

std::optional<core::Duration> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  const auto year_ = digits(s, 0, 4), month_ = digits(s, 5, 2), day_ = digits(s, 8, 2);
  const auto hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  if (!year_ || !month_ || !day_ || !hour || !minute || !second || !at(s, 4, '-') ||
      !at(s, 7, '-') || !(at(s, 10, 'T') || at(s, 10, 't')) || !at(s, 13, ':') ||
      !at(s, 16, ':'))
    return std::nullopt;
  const year_month_day date{year{*year_}, month{static_cast<unsigned>(*month_)},
                            day{static_cast<unsigned>(*day_)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;

  std::size_t pos = 19;
  nanoseconds fraction{0};
  if (at(s, pos, '.')) {
    ++pos;
    std::int64_t value = 0;
    int count = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (++count > 9) return std::nullopt;
      value = value * 10 + (s[pos++] - '0');
    }
    if (count == 0) return std::nullopt;
    for (int i = count; i < 9; ++i) value *= 10;
    fraction = nanoseconds(value);
  }

  minutes offset{0};
  if (at(s, pos, 'Z') || at(s, pos, 'z')) {
    ++pos;
  } else if (at(s, pos, '+') || at(s, pos, '-')) {
    const bool east = s[pos] == '+';
    const auto oh = digits(s, pos + 1, 2), om = digits(s, pos + 4, 2);
    if (!oh || !om || !at(s, pos + 3, ':') || *oh > 23 || *om > 59) return std::nullopt;
    offset = minutes((*oh * 60 + *om) * (east ? 1 : -1));
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;

  // Local time minus its offset from UTC.
  return sys_days(date).time_since_epoch() + hours(*hour) + minutes(*minute) + seconds(*second) +
         fraction - offset;
}

Read<core::FlowKey> flow_from_json(const nlohmann::json& j) {
  Problems problems;
  core::FlowKey flow;
  if (!read_flow(j, "", flow, problems)) return std::move(problems).what();
  return flow;
}

Read<core::HopEvent> hop_from_json(const nlohmann::json& j) {
  Problems problems;
  core::HopEvent hop;
  if (!require_object(j, "", problems) || !read_flow_member(j, "", hop.flow, problems) ||
      !read_uint(j, "", "round", hop.round, problems) ||
      !read_uint(j, "", "ttl", hop.ttl, problems) || !read_reply(j, "", hop.reply, problems))
    return std::move(problems).what();
  return hop;
}

Read<core::TraceResult> trace_from_json(const nlohmann::json& j) {
  Problems problems;
  core::TraceResult t;
  if (!require_object(j, "", problems) || !read_flow_member(j, "", t.flow, problems) ||
      !read_uint(j, "", "round", t.round, problems) ||
      !read_enum(j, "", "mode", modes, t.mode, problems) ||
      !read_time(j, "", "start", t.start, problems) || !read_time(j, "", "end", t.end, problems) ||
      !read_uint(j, "", "probes_sent", t.probes_sent, problems) ||
      !read_enum(j, "", "reason", stop_reasons, t.reason, problems))
    return std::move(problems).what();

  const json* reached = member(j, "reached");
  if (!reached || !reached->is_boolean()) {
    problems.fail("reached", reached ? "must be true or false" : "missing");
    return std::move(problems).what();
  }
  t.reached = reached->get<bool>();

  const json* hops = member(j, "hops");
  if (!hops || !hops->is_array()) {
    problems.fail("hops", hops ? "must be an array" : "missing");
    return std::move(problems).what();
  }
  t.hops.reserve(hops->size());
  for (std::size_t i = 0; i < hops->size(); ++i) {
    core::Hop hop;
    if (!read_hop((*hops)[i], fmt::format("hops[{}]", i), hop, problems))
      return std::move(problems).what();
    t.hops.push_back(std::move(hop));
  }
  if (!read_trace_findings(j, t, problems)) return std::move(problems).what();
  return t;
}

}  // namespace nfqtrace::output
