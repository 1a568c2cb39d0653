#include <gtest/gtest.h>

#include <string>

#include "nfqtrace/coop/line_reader.hpp"
#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/output/format.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;
using coop::DecodeError;
using Kind = coop::DecodeError::Kind;

namespace {

wire::Address addr(const char* text) { return *wire::Address::parse(text); }

const core::FlowKey server_flow{addr("192.0.2.7"), addr("10.0.0.2"), 443, 41234};

core::Reply reply(const char* from, core::ReplyKind kind, core::Duration rtt) {
  core::Reply r;
  r.addr = addr(from);
  r.kind = kind;
  r.rtt = rtt;
  r.at.wall = 1'795'773'600s + 123456us + rtt;
  r.reply_ttl = 62;
  r.quoted_ttl = 1;
  return r;
}

core::TraceResult sample_trace() {
  core::TraceResult t;
  t.flow = server_flow;
  t.round = 1;
  t.mode = core::Mode::dup;
  t.start.wall = 1'795'773'600s + 123456us;
  t.end.wall = t.start.wall + 2s;
  t.reached = true;
  t.reason = core::StopReason::reached;
  t.probes_sent = 9;
  t.hops = {core::Hop{1, 3, {reply("198.51.100.1", core::ReplyKind::time_exceeded, 410us)}, {}},
            core::Hop{2, 3, {}, {}},
            core::Hop{3, 3, {reply("10.0.0.2", core::ReplyKind::destination, 12410us)}, {}}};
  return t;
}

std::string without_newline(std::string line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line only";
  return line;
}

coop::Message decode_ok(std::string_view line) {
  const coop::Decoded d = coop::decode(line);
  if (!d) {
    ADD_FAILURE() << "decode failed: " << d.error().reason << "\n  line: " << line;
    return coop::Unknown{};
  }
  return *d;
}

template <typename T>
T round_trip(const T& message) {
  const coop::Message decoded = decode_ok(without_newline(coop::encode(message)));
  EXPECT_TRUE(std::holds_alternative<T>(decoded)) << coop::encode(message);
  return std::holds_alternative<T>(decoded) ? std::get<T>(decoded) : T{};
}

}  // namespace

TEST(Codec, HelloRoundTripsWithEveryParameter) {
  coop::Hello hello;
  hello.params.mode = core::Mode::mangle;
  hello.params.packet_freq = 6;
  hello.params.max_ttl = 20;
  hello.params.ttl_repeat = 2;
  hello.params.timeout = 250ms;
  hello.params.gap_limit = 4;
  const auto back = round_trip(hello);
  EXPECT_EQ(back.version, 1);
  EXPECT_EQ(back.params, hello.params);
}

TEST(Codec, HelloWithoutParametersLeavesThemToTheServer) {
  const auto back = round_trip(coop::Hello{});
  EXPECT_EQ(back.params, coop::TraceRequest{});
  EXPECT_EQ(without_newline(coop::encode(coop::Hello{})),
            R"({"params":{},"type":"hello","version":1})");
}

TEST(Codec, ParametersUseTheOptionNamesAndSecondsForTheTimeout) {
  coop::Hello hello;
  hello.params.timeout = 1500ms;
  hello.params.max_ttl = 12;
  const auto j = nlohmann::json::parse(coop::encode(hello));
  EXPECT_DOUBLE_EQ(j["params"]["timeout"].get<double>(), 1.5);
  EXPECT_EQ(j["params"]["maxttl"], 12);
}

TEST(Codec, ServerHelloRoundTripsWithItsFlow) {
  coop::ServerHello hello{1, {}, server_flow};
  hello.params.max_ttl = 30;
  hello.params.timeout = 1s;
  const auto back = round_trip(hello);
  EXPECT_EQ(back.flow, server_flow);
  EXPECT_EQ(back.params, hello.params);
  const auto j = nlohmann::json::parse(coop::encode(hello));
  EXPECT_EQ(j["flow"], output::flow_json(server_flow));
}

TEST(Codec, FillerDoneErrorAndUnknownRoundTrip) {
  const auto filler = round_trip(coop::make_filler(7));
  EXPECT_EQ(filler.n, 7u);
  EXPECT_EQ(filler.pad.size(), coop::filler_pad_size);
  round_trip(coop::Done{});
  const auto error = round_trip(coop::ErrorMessage{"version 2: \"nope\"\nsecond line \u00e9"});
  EXPECT_EQ(error.message, "version 2: \"nope\"\nsecond line \u00e9");
  EXPECT_EQ(round_trip(coop::Unknown{"future-thing"}).type, "future-thing");
}

TEST(Codec, HopAndTraceAreByteForByteNfqtracesObjects) {
  const core::TraceResult trace = sample_trace();
  const core::HopEvent hop{server_flow, 1, 3, trace.hops[2].replies[0]};
  EXPECT_EQ(coop::encode(coop::HopMessage{hop}), output::hop_json(hop).dump() + "\n");
  EXPECT_EQ(coop::encode(coop::TraceMessage{trace}), output::trace_json(trace).dump() + "\n");

  const auto hop_back = round_trip(coop::HopMessage{hop});
  EXPECT_EQ(output::hop_json(hop_back.hop), output::hop_json(hop));
  const auto trace_back = round_trip(coop::TraceMessage{trace});
  EXPECT_EQ(output::trace_json(trace_back.trace), output::trace_json(trace));
}

TEST(Codec, TypeOfNamesTheWireType) {
  EXPECT_EQ(coop::type_of(coop::Hello{}), "hello");
  EXPECT_EQ(coop::type_of(coop::ServerHello{}), "hello");
  EXPECT_EQ(coop::type_of(coop::make_filler(1)), "filler");
  EXPECT_EQ(coop::type_of(coop::Done{}), "done");
  EXPECT_EQ(coop::type_of(coop::Unknown{"x"}), "x");
}

TEST(Codec, UnknownFieldsAndNullParametersAreIgnored) {
  const auto m = decode_ok(
      R"({"type":"hello","version":1,"future":{"a":[1,2]},"params":{"maxttl":9,"ttlrepeat":null,"new":"x"}})");
  ASSERT_TRUE(std::holds_alternative<coop::Hello>(m));
  EXPECT_EQ(std::get<coop::Hello>(m).params.max_ttl, 9u);
  EXPECT_FALSE(std::get<coop::Hello>(m).params.ttl_repeat);
}

TEST(Codec, UnknownTypesDecodeAsUnknown) {
  const auto m = decode_ok(R"({"type":"stats","anything":[{}]})");
  ASSERT_TRUE(std::holds_alternative<coop::Unknown>(m));
  EXPECT_EQ(std::get<coop::Unknown>(m).type, "stats");
}

TEST(Codec, HelloVersionIsReadEvenWhenUnsupported) {
  const auto m = decode_ok(R"({"type":"hello","version":2,"params":{"whatever":true}})");
  ASSERT_TRUE(std::holds_alternative<coop::Hello>(m));
  EXPECT_EQ(std::get<coop::Hello>(m).version, 2);
}

TEST(Codec, EncodingInvalidUtf8NeverThrowsAndStaysValid) {
  const std::string line = coop::encode(coop::ErrorMessage{"bad \xC0\xAF byte"});
  coop::LineReader reader;
  EXPECT_FALSE(reader.feed(std::span<const char>(line.data(), line.size())));
  ASSERT_EQ(reader.lines().size(), 1u);
  EXPECT_TRUE(std::holds_alternative<coop::ErrorMessage>(decode_ok(reader.lines()[0])));
}

TEST(Codec, PrintableDefusesTerminalControlsAndCutsAtACharacter) {
  EXPECT_EQ(coop::printable("plain \u00e9t\u00e9"), "plain \u00e9t\u00e9");
  EXPECT_EQ(coop::printable("a\x1b[2Jb\nc\x7f"), "a?[2Jb?c?");
  EXPECT_EQ(coop::printable("c1 \xC2\x9B" "31m"), "c1 ??31m");  // U+009B, a CSI
  EXPECT_EQ(coop::printable("bad \xFF"), "bad ?");
  // 10 bytes: "ab" then "..." would split the 2-byte é otherwise.
  EXPECT_EQ(coop::printable("ab\u00e9\u00e9\u00e9\u00e9", 7), "ab\u00e9...");
  EXPECT_EQ(coop::printable(std::string(500, 'x')).size(), 200u);
}

// What a hostile or broken peer may send: every line gets a DecodeError of
// the right kind with a one-line reason, never an exception or a crash.
namespace {

struct HostileCase {
  const char* name;
  std::string line;
  Kind kind;
};
void PrintTo(const HostileCase& c, std::ostream* os) { *os << c.name; }

}  // namespace

class CodecHostile : public testing::TestWithParam<HostileCase> {};

TEST_P(CodecHostile, IsRefusedWithAOneLineReason) {
  const HostileCase& c = GetParam();
  std::optional<coop::Decoded> d;
  ASSERT_NO_THROW(d.emplace(coop::decode(c.line)));
  ASSERT_FALSE(*d) << c.name << " decoded";
  const DecodeError* error = &d->error();
  EXPECT_EQ(error->kind, c.kind) << error->reason;
  EXPECT_FALSE(error->reason.empty());
  EXPECT_EQ(error->reason.find('\n'), std::string::npos);
  EXPECT_LE(error->reason.size(), 300u);
}

namespace {

std::string nested(std::size_t depth) {
  return R"({"type":"x","a":)" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
}

const std::string hop_line = output::hop_json({server_flow, 1, 1, reply("198.51.100.1",
                                               core::ReplyKind::time_exceeded, 1ms)}).dump();
std::string with(std::string line, const std::string& from, const std::string& to) {
  line.replace(line.find(from), from.size(), to);
  return line;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(
    Table, CodecHostile,
    testing::Values(
        HostileCase{"empty", "", Kind::invalid_json},
        HostileCase{"not_json", "hello server", Kind::invalid_json},
        HostileCase{"truncated", R"({"type":"hello","vers)", Kind::invalid_json},
        HostileCase{"trailing_garbage", R"({"type":"done"} x)", Kind::invalid_json},
        HostileCase{"two_objects", R"({"type":"done"}{"type":"done"})", Kind::invalid_json},
        HostileCase{"raw_invalid_utf8", "{\"type\":\"\xC0\xAF\"}", Kind::invalid_json},
        HostileCase{"number_overflow", R"({"type":"hello","version":1e400})", Kind::invalid_json},
        HostileCase{"deep_array", std::string(100000, '['), Kind::invalid_json},
        HostileCase{"deep_object", std::string(50000, '{') + std::string(50000, '}'),
                    Kind::invalid_json},
        HostileCase{"33_levels", nested(33), Kind::invalid_json},
        HostileCase{"garbage_100kb", std::string(100 * 1024, '@'), Kind::invalid_json},
        HostileCase{"array", R"([{"type":"hello","version":1}])", Kind::not_an_object},
        HostileCase{"string", R"("hello")", Kind::not_an_object},
        HostileCase{"number", "42", Kind::not_an_object},
        HostileCase{"null", "null", Kind::not_an_object},
        HostileCase{"no_type", R"({"version":1})", Kind::missing_type},
        HostileCase{"type_number", R"({"type":5})", Kind::missing_type},
        HostileCase{"type_null", R"({"type":null})", Kind::missing_type},
        HostileCase{"hello_no_version", R"({"type":"hello"})", Kind::bad_field},
        HostileCase{"version_string", R"({"type":"hello","version":"1"})", Kind::bad_field},
        HostileCase{"version_fraction", R"({"type":"hello","version":1.5})", Kind::bad_field},
        HostileCase{"version_negative", R"({"type":"hello","version":-1})", Kind::bad_field},
        HostileCase{"version_huge", R"({"type":"hello","version":99999999999999999999})",
                    Kind::bad_field},
        HostileCase{"params_array", R"({"type":"hello","version":1,"params":[]})",
                    Kind::bad_field},
        HostileCase{"maxttl_negative", R"({"type":"hello","version":1,"params":{"maxttl":-1}})",
                    Kind::bad_field},
        HostileCase{"maxttl_beyond_u64",
                    R"({"type":"hello","version":1,"params":{"maxttl":99999999999999999999999}})",
                    Kind::bad_field},
        HostileCase{"maxttl_float", R"({"type":"hello","version":1,"params":{"maxttl":1e30}})",
                    Kind::bad_field},
        HostileCase{"maxttl_string", R"({"type":"hello","version":1,"params":{"maxttl":"30"}})",
                    Kind::bad_field},
        HostileCase{"timeout_string", R"({"type":"hello","version":1,"params":{"timeout":"1"}})",
                    Kind::bad_field},
        HostileCase{"timeout_negative", R"({"type":"hello","version":1,"params":{"timeout":-1}})",
                    Kind::bad_field},
        HostileCase{"mode_evil", R"({"type":"hello","version":1,"params":{"mode":"evil"}})",
                    Kind::bad_field},
        HostileCase{"mode_number", R"({"type":"hello","version":1,"params":{"mode":1}})",
                    Kind::bad_field},
        HostileCase{"flow_partial", R"({"type":"hello","version":1,"flow":{"src":"1.2.3.4"}})",
                    Kind::bad_field},
        HostileCase{"flow_string", R"({"type":"hello","version":1,"flow":"x"})", Kind::bad_field},
        HostileCase{"filler_negative", R"({"type":"filler","n":-1,"pad":""})", Kind::bad_field},
        HostileCase{"filler_no_pad", R"({"type":"filler","n":1})", Kind::bad_field},
        HostileCase{"error_no_message", R"({"type":"error"})", Kind::bad_field},
        HostileCase{"error_message_number", R"({"type":"error","message":5})", Kind::bad_field},
        HostileCase{"hop_empty", R"({"type":"hop"})", Kind::bad_field},
        HostileCase{"hop_bad_addr", with(hop_line, "198.51.100.1", "198.51.100.999"),
                    Kind::bad_field},
        HostileCase{"hop_ttl_300", with(hop_line, "\"ttl\":1", "\"ttl\":300"), Kind::bad_field},
        HostileCase{"hop_bad_time", with(hop_line, "2026-11-27T", "2026-13-27T"),
                    Kind::bad_field},
        HostileCase{"hop_bad_kind", with(hop_line, "time-exceeded", "teapot"), Kind::bad_field},
        HostileCase{"trace_hops_not_array",
                    R"({"type":"trace","flow":{"src":"192.0.2.7","sport":443,"dst":"10.0.0.2","dport":41234},"round":1,"mode":"dup","start":"2026-11-27T10:00:00.000000Z","end":"2026-11-27T10:00:01.000000Z","reached":false,"reason":"closed","probes_sent":0,"hops":7})",
                    Kind::bad_field}),
    [](const testing::TestParamInfo<HostileCase>& p) { return std::string(p.param.name); });

TEST(CodecHostileLimits, NestingUpToTheLimitIsFine) {
  const auto d = coop::decode(nested(coop::max_json_depth));
  EXPECT_TRUE(d) << d.error().reason;
}

TEST(CodecHostileLimits, BracketsInsideStringsDoNotCountAsNesting) {
  const auto d = coop::decode(R"({"type":"x","s":")" + std::string(1000, '[') + "\\\"" +
                              std::string(1000, '{') + "\"}");
  ASSERT_TRUE(d);
  EXPECT_TRUE(std::holds_alternative<coop::Unknown>(*d));
}

TEST(CodecHostileLimits, ReasonsNameTheField) {
  const auto d = coop::decode(R"({"type":"hello","version":1,"params":{"ttlrepeat":-3}})");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().reason.find("params.ttlrepeat"), std::string::npos) << d.error().reason;
  const auto hop = coop::decode(with(hop_line, "198.51.100.1", "nowhere"));
  ASSERT_FALSE(hop);
  EXPECT_NE(hop.error().reason.find("addr"), std::string::npos);
}

TEST(CodecHostileLimits, AHundredKilobyteLineIsStoppedByTheLineReader) {
  coop::LineReader reader;
  const std::string line = R"({"type":"filler","n":1,"pad":")" + std::string(100 * 1024, '.') +
                           "\"}\n";
  const auto& error = reader.feed(std::span<const char>(line.data(), line.size()));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, coop::LineError::Kind::too_long);
  EXPECT_TRUE(reader.lines().empty());
}
