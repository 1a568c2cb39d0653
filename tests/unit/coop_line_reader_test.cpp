#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nfqtrace/coop/line_reader.hpp"

using namespace nfqtrace;
using coop::LineError;
using coop::LineReader;

namespace {

std::span<const char> bytes(const std::string& s) { return {s.data(), s.size()}; }

// Feeds `text` one byte at a time: the hardest split there is.
const std::optional<LineError>& feed_bytewise(LineReader& reader, const std::string& text) {
  for (const char c : text) reader.feed(std::span<const char>(&c, 1));
  return reader.error();
}

std::vector<std::string> drain(LineReader& reader) {
  std::vector<std::string> out;
  out.swap(reader.lines());
  return out;
}

}  // namespace

TEST(LineReader, JoinsLinesSplitAcrossChunks) {
  LineReader reader;
  EXPECT_FALSE(reader.feed(bytes("{\"ty")));
  EXPECT_TRUE(reader.lines().empty());
  EXPECT_FALSE(reader.feed(bytes("pe\":1}\n{}\n\nrest")));
  EXPECT_EQ(drain(reader), (std::vector<std::string>{"{\"type\":1}", "{}", ""}));
  EXPECT_EQ(reader.pending_bytes(), 4u);
  EXPECT_FALSE(reader.feed(bytes("\n")));
  EXPECT_EQ(drain(reader), std::vector<std::string>{"rest"});
}

TEST(LineReader, StripsTheCarriageReturnOfCrlfOnly) {
  LineReader reader;
  reader.feed(bytes("a\r\nb\rc\n\r\n"));
  EXPECT_EQ(drain(reader), (std::vector<std::string>{"a", "b\rc", ""}));
  // "\r" and "\n" in different chunks.
  reader.feed(bytes("d\r"));
  reader.feed(bytes("\n"));
  EXPECT_EQ(drain(reader), std::vector<std::string>{"d"});
}

TEST(LineReader, AcceptsLinesUpToTheLimitWithEitherEnding) {
  LineReader reader(8);
  EXPECT_FALSE(reader.feed(bytes("12345678\n12345678\r\n")));
  EXPECT_EQ(drain(reader), (std::vector<std::string>{"12345678", "12345678"}));
}

TEST(LineReader, RefusesALongerLineWithoutBufferingIt) {
  LineReader reader(8);
  const std::string huge(1 << 20, 'x');  // no newline at all
  const auto& error = reader.feed(bytes(huge));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, LineError::Kind::too_long);
  EXPECT_NE(error->message.find("longer than 8 bytes"), std::string::npos) << error->message;
  EXPECT_EQ(reader.pending_bytes(), 0u);
  EXPECT_TRUE(reader.lines().empty());
}

TEST(LineReader, OneByteOverTheLimitIsTooLongEvenWithCrlf) {
  LineReader reader(8);
  ASSERT_TRUE(reader.feed(bytes("123456789\r\n")));
  EXPECT_EQ(reader.error()->kind, LineError::Kind::too_long);
  LineReader cr_inside(8);
  ASSERT_TRUE(cr_inside.feed(bytes("12345678\rx\n")));
  EXPECT_EQ(cr_inside.error()->kind, LineError::Kind::too_long);
}

TEST(LineReader, DefaultLimitIs16KiB) {
  LineReader reader;
  EXPECT_FALSE(reader.feed(bytes(std::string(16 * 1024, 'a') + "\n")));
  EXPECT_EQ(drain(reader).at(0).size(), 16u * 1024);
  EXPECT_TRUE(reader.feed(bytes(std::string(16 * 1024 + 1, 'a'))));
}

TEST(LineReader, DeliversTheLinesBeforeAnErrorThenStaysBroken) {
  LineReader reader;
  const auto& error = reader.feed(bytes(std::string("good\nbad") + '\0' + "\nlater\n"));
  ASSERT_TRUE(error);
  EXPECT_EQ(drain(reader), std::vector<std::string>{"good"});
  // Every later feed reports the same error and yields nothing.
  for (int i = 0; i < 3; ++i) {
    const auto& again = reader.feed(bytes("fine\n"));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->kind, LineError::Kind::nul_byte);
    EXPECT_TRUE(reader.lines().empty());
  }
}

TEST(LineReader, RefusesNul) {
  LineReader reader;
  const auto& error = reader.feed(bytes(std::string("{\"type\":\"x\0\"}\n", 14)));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, LineError::Kind::nul_byte);
  EXPECT_TRUE(reader.lines().empty());
}

TEST(LineReader, AcceptsEveryLengthOfUtf8SplitAnywhere) {
  // é (2 bytes), € (3), U+FFFD (3), 😀 (4), U+10FFFF (4), U+E000 (3, past the surrogates).
  const std::string text =
      "caf\xC3\xA9 \xE2\x82\xAC \xEF\xBF\xBD \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF \xEE\x80\x80";
  LineReader reader;
  EXPECT_FALSE(feed_bytewise(reader, text + "\n"));
  EXPECT_EQ(drain(reader), std::vector<std::string>{text});
}

namespace {

struct Utf8Case {
  const char* name;
  std::string bytes;
  const char* problem;  // in the error message
};
void PrintTo(const Utf8Case& c, std::ostream* os) { *os << c.name; }

}  // namespace

class LineReaderUtf8 : public testing::TestWithParam<Utf8Case> {};

TEST_P(LineReaderUtf8, RefusesTheSequenceWhetherWholeOrSplit) {
  const Utf8Case& c = GetParam();
  const std::string line = "{\"s\":\"" + c.bytes + "\"}\n";
  LineReader whole;
  const auto& error = whole.feed(bytes(line));
  ASSERT_TRUE(error) << c.name;
  EXPECT_EQ(error->kind, LineError::Kind::invalid_utf8);
  EXPECT_NE(error->message.find(c.problem), std::string::npos) << error->message;
  EXPECT_TRUE(whole.lines().empty());

  LineReader split;
  ASSERT_TRUE(feed_bytewise(split, line)) << c.name;
  EXPECT_EQ(split.error()->message, error->message);
}

INSTANTIATE_TEST_SUITE_P(
    EveryClass, LineReaderUtf8,
    testing::Values(
        Utf8Case{"overlong_2", "\xC0\xAF", "overlong"},
        Utf8Case{"overlong_2_c1", "\xC1\xBF", "overlong"},
        Utf8Case{"overlong_3", "\xE0\x80\xAF", "overlong"},
        Utf8Case{"overlong_4", "\xF0\x80\x80\xAF", "overlong"},
        Utf8Case{"surrogate_high", "\xED\xA0\x80", "surrogate"},
        Utf8Case{"surrogate_low", "\xED\xBF\xBF", "surrogate"},
        Utf8Case{"above_max_f4", "\xF4\x90\x80\x80", "above U+10FFFF"},
        Utf8Case{"above_max_f5", "\xF5\x80\x80\x80", "above U+10FFFF"},
        Utf8Case{"never_ff", "\xFF", "never occurs"},
        Utf8Case{"never_f8", "\xF8\x88\x80\x80\x80", "never occurs"},
        Utf8Case{"lone_continuation", "\x80", "unexpected continuation"},
        Utf8Case{"truncated_by_ascii", "\xE2\x82" "A", "truncated"},
        Utf8Case{"truncated_by_lead", "\xC3\xC3\xA9", "truncated"},
        Utf8Case{"four_byte_lead_then_quote", "\xF0\x9F\x98", "truncated"}),
    [](const testing::TestParamInfo<Utf8Case>& p) { return std::string(p.param.name); });

TEST(LineReader, RefusesASequenceTruncatedByTheEndOfTheLine) {
  LineReader reader;
  ASSERT_TRUE(reader.feed(bytes("abc\xE2\x82\n")));
  EXPECT_EQ(reader.error()->kind, LineError::Kind::invalid_utf8);
  EXPECT_NE(reader.error()->message.find("truncated"), std::string::npos);
  EXPECT_TRUE(reader.lines().empty());
}
