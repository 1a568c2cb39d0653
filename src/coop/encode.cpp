#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/output/format.hpp"
#include "params_json.hpp"

namespace nfqtrace::coop {
namespace {

using nlohmann::json;

struct ToJson {
  json operator()(const Hello& m) const {
    json j{{"type", "hello"}, {"version", m.version}, {"params", params_to_json(m.params)}};
    if (m.client) j["client"] = json{{"addr", m.client->addr.to_string()}, {"port", m.client->port}};
    return j;
  }
  json operator()(const ServerHello& m) const {
    return json{{"type", "hello"},
                {"version", m.version},
                {"params", params_to_json(m.params)},
                {"flow", output::flow_json(m.flow)}};
  }
  json operator()(const Filler& m) const {
    return json{{"type", "filler"}, {"n", m.n}, {"pad", m.pad}};
  }
  json operator()(const HopMessage& m) const { return output::hop_json(m.hop); }
  json operator()(const TraceMessage& m) const { return output::trace_json(m.trace); }
  json operator()(const Done&) const { return json{{"type", "done"}}; }
  json operator()(const ErrorMessage& m) const {
    return json{{"type", "error"}, {"message", m.message}};
  }
  json operator()(const Unknown& m) const { return json{{"type", m.type}}; }
};

struct TypeName {
  std::string_view operator()(const Hello&) const { return "hello"; }
  std::string_view operator()(const ServerHello&) const { return "hello"; }
  std::string_view operator()(const Filler&) const { return "filler"; }
  std::string_view operator()(const HopMessage&) const { return "hop"; }
  std::string_view operator()(const TraceMessage&) const { return "trace"; }
  std::string_view operator()(const Done&) const { return "done"; }
  std::string_view operator()(const ErrorMessage&) const { return "error"; }
  std::string_view operator()(const Unknown& m) const { return m.type; }
};

}  // namespace

std::string encode(const Message& message) {
  // Replacing invalid UTF-8 (rather than throwing) keeps every line valid.
  return std::visit(ToJson{}, message).dump(-1, ' ', false, json::error_handler_t::replace) +
         '\n';
}

std::string_view type_of(const Message& message) { return std::visit(TypeName{}, message); }

Filler make_filler(std::uint64_t n) { return Filler{n, std::string(filler_pad_size, '.')}; }

}  // namespace nfqtrace::coop
