#include <fmt/format.h>

#include <limits>

#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/output/parse.hpp"
#include "params_json.hpp"

namespace nfqtrace::coop {
namespace {

using nlohmann::json;
using Kind = DecodeError::Kind;

DecodeError bad_field(std::string_view path, std::string_view why) {
  return DecodeError{Kind::bad_field, fmt::format("bad field {}: {}", path, why)};
}

// True when brackets outside strings nest deeper than `limit`. Checked
// before parsing, so no parser or destructor ever recurses deeply on what a
// peer sent.
bool nested_deeper_than(std::string_view line, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : line) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string parse_problem(const json::exception& e) {
  std::string_view what = e.what();
  if (const auto end = what.find("] "); end != std::string_view::npos) what.remove_prefix(end + 2);
  return printable(what, 160);
}

const json* present(const json& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

Decoded decode_hello(const json& j) {
  const json* version = present(j, "version");
  if (!version) return bad_field("version", "missing");
  if (!version->is_number_integer() || version->get<std::int64_t>() < 0 ||
      version->get<std::int64_t>() > std::numeric_limits<int>::max())
    return bad_field("version", "must be a non-negative integer");
  const int v = static_cast<int>(version->get<std::int64_t>());

  TraceRequest params;
  if (const json* p = present(j, "params")) {
    auto parsed = params_from_json(*p);
    if (!parsed) return DecodeError{Kind::bad_field, "bad field " + parsed.error()};
    params = *parsed;
  }

  const json* flow = present(j, "flow");
  if (!flow) {
    Hello hello{v, params, std::nullopt};
    if (const json* client = present(j, "client")) {
      const json* addr = client->is_object() ? present(*client, "addr") : nullptr;
      const json* port = client->is_object() ? present(*client, "port") : nullptr;
      const auto parsed = addr && addr->is_string()
                              ? wire::Address::parse(addr->get_ref<const std::string&>())
                              : std::nullopt;
      if (!parsed) return bad_field("client.addr", "must be an IPv4 or IPv6 address");
      if (!port || !port->is_number_unsigned() || port->get<std::uint64_t>() > 65535)
        return bad_field("client.port", "must be an integer from 0 to 65535");
      hello.client = Endpoint{*parsed, static_cast<std::uint16_t>(port->get<std::uint64_t>())};
    }
    return Message{std::move(hello)};
  }
  if (!flow->is_object()) return bad_field("flow", "must be an object");
  const auto key = output::flow_from_json(*flow);
  if (!key) return DecodeError{Kind::bad_field, "bad field flow." + key.error()};
  return Message{ServerHello{v, params, *key}};
}

Decoded decode_filler(const json& j) {
  const json* n = present(j, "n");
  if (!n || !n->is_number_unsigned())
    return bad_field("n", n ? "must be a non-negative integer" : "missing");
  const json* pad = present(j, "pad");
  if (!pad || !pad->is_string()) return bad_field("pad", pad ? "must be a string" : "missing");
  return Message{Filler{n->get<std::uint64_t>(), pad->get<std::string>()}};
}

Decoded decode_error(const json& j) {
  const json* message = present(j, "message");
  if (!message || !message->is_string())
    return bad_field("message", message ? "must be a string" : "missing");
  return Message{ErrorMessage{message->get<std::string>()}};
}

Decoded decode_result(const json& j, std::string_view type) {
  if (type == "hop") {
    auto hop = output::hop_from_json(j);
    if (!hop) return DecodeError{Kind::bad_field, "bad field " + hop.error()};
    return Message{HopMessage{*hop}};
  }
  auto trace = output::trace_from_json(j);
  if (!trace) return DecodeError{Kind::bad_field, "bad field " + trace.error()};
  return Message{TraceMessage{std::move(*trace)}};
}

}  // namespace

Decoded decode(std::string_view line) {
  if (nested_deeper_than(line, max_json_depth))
    return DecodeError{Kind::invalid_json,
                       fmt::format("invalid JSON: nested deeper than {} levels", max_json_depth)};
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    return DecodeError{Kind::invalid_json, "invalid JSON: " + parse_problem(e)};
  }
  if (!j.is_object()) return DecodeError{Kind::not_an_object, "not a JSON object"};
  const auto type = j.find("type");
  if (type == j.end() || !type->is_string())
    return DecodeError{Kind::missing_type, "no \"type\" string"};

  const std::string& name = type->get_ref<const std::string&>();
  if (name == "hello") return decode_hello(j);
  if (name == "filler") return decode_filler(j);
  if (name == "hop" || name == "trace") return decode_result(j, name);
  if (name == "done") return Message{Done{}};
  if (name == "error") return decode_error(j);
  return Message{Unknown{name}};
}

}  // namespace nfqtrace::coop
