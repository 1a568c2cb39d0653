#include "nfqtrace/coop/line_reader.hpp"

#include <fmt/format.h>

namespace nfqtrace::coop {
namespace {

bool is_continuation(std::uint8_t b) { return b >= 0x80 && b <= 0xBF; }

// Why a continuation byte outside the narrowed range is invalid after `lead`
// (Unicode table 3-7: E0 and F0 would be overlong, ED a surrogate, F4 above
// U+10FFFF).
std::string_view narrowed_range_error(std::uint8_t lead) {
  switch (lead) {
    case 0xE0: case 0xF0: return "overlong encoding";
    case 0xED: return "surrogate";
    default: return "code point above U+10FFFF";
  }
}

}  // namespace

LineReader::LineReader(std::size_t max_line) : max_line_(max_line) {}

void LineReader::fail(LineError::Kind kind, std::string message) {
  error_ = LineError{kind, std::move(message)};
  partial_.clear();
  partial_.shrink_to_fit();
}

bool LineReader::utf8_ok(std::uint8_t b) {
  const auto invalid = [this](std::string_view why) {
    fail(LineError::Kind::invalid_utf8, fmt::format("invalid UTF-8 ({})", why));
    return false;
  };
  if (utf8_needed_ > 0) {
    if (b >= utf8_low_ && b <= utf8_high_) {
      --utf8_needed_;
      utf8_low_ = 0x80;
      utf8_high_ = 0xBF;
      return true;
    }
    return invalid(is_continuation(b) ? narrowed_range_error(utf8_lead_) : "truncated sequence");
  }
  if (b < 0x80) return true;
  if (is_continuation(b)) return invalid("unexpected continuation byte");
  if (b == 0xC0 || b == 0xC1) return invalid("overlong encoding");
  if (b >= 0xF5 && b <= 0xF7) return invalid("code point above U+10FFFF");
  if (b >= 0xF8) return invalid(fmt::format("byte 0x{:02X} never occurs", b));

  utf8_lead_ = b;
  utf8_needed_ = b < 0xE0 ? 1 : b < 0xF0 ? 2 : 3;
  if (b == 0xE0) utf8_low_ = 0xA0;   // below: overlong
  if (b == 0xED) utf8_high_ = 0x9F;  // above: UTF-16 surrogates
  if (b == 0xF0) utf8_low_ = 0x90;   // below: overlong
  if (b == 0xF4) utf8_high_ = 0x8F;  // above: beyond U+10FFFF
  return true;
}

void LineReader::accept(std::uint8_t b) {
  if (b == '\n') {
    if (utf8_needed_ > 0) {
      fail(LineError::Kind::invalid_utf8, "invalid UTF-8 (truncated sequence)");
      return;
    }
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    lines_.push_back(std::move(partial_));
    partial_.clear();
    return;
  }
  if (b == 0) {
    fail(LineError::Kind::nul_byte, "NUL byte in a line");
    return;
  }
  if (!utf8_ok(b)) return;
  partial_.push_back(static_cast<char>(b));
  // One byte over the limit is allowed only if it is the '\r' of a "\r\n".
  if (partial_.size() > max_line_ &&
      !(partial_.size() == max_line_ + 1 && partial_.back() == '\r'))
    fail(LineError::Kind::too_long, fmt::format("line longer than {} bytes", max_line_));
}

const std::optional<LineError>& LineReader::feed(std::span<const char> bytes) {
  for (const char c : bytes) {
    if (error_) break;
    accept(static_cast<std::uint8_t>(c));
  }
  return error_;
}

}  // namespace nfqtrace::coop
