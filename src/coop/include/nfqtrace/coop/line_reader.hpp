// Splits a byte stream into lines for the cooperative protocol (JSON Lines).
//
// Bytes arrive in arbitrary chunks; complete lines come out without their
// '\n' (and without a '\r' before it). A peer cannot make it buffer more
// than one line of `max_line` bytes: a longer line is an error as soon as
// its first excess byte arrives. Lines must be valid UTF-8 without NUL
// (checked as the bytes arrive, so a sequence may be split across chunks).
// An error is final: the stream has lost its framing, so every later feed
// reports the same error and yields nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace nfqtrace::coop {

struct LineError {
  enum class Kind : std::uint8_t { too_long, invalid_utf8, nul_byte };
  Kind kind;
  std::string message;  // one line, e.g. "invalid UTF-8 (overlong encoding)"
};

class LineReader {
 public:
  static constexpr std::size_t default_max_line = 16 * 1024;

  // `max_line`: bytes per line, not counting the "\n" or "\r\n" ending it.
  explicit LineReader(std::size_t max_line = default_max_line);

  // Appends the lines that `bytes` completes to lines(), in order; lines
  // completed before an error in the same chunk are still delivered.
  // Returns the error, if the stream has one (now or from an earlier feed).
  const std::optional<LineError>& feed(std::span<const char> bytes);

  // Complete lines, to be drained (cleared) by the caller.
  std::vector<std::string>& lines() { return lines_; }
  const std::optional<LineError>& error() const { return error_; }
  // Bytes of a line still waiting for its '\n'.
  std::size_t pending_bytes() const { return partial_.size(); }
  std::size_t max_line() const { return max_line_; }

 private:
  void accept(std::uint8_t byte);
  void fail(LineError::Kind kind, std::string message);
  // The UTF-8 check of one byte; false after recording an error.
  bool utf8_ok(std::uint8_t byte);

  std::size_t max_line_;
  std::string partial_;
  std::vector<std::string> lines_;
  std::optional<LineError> error_;
  // Inside a multi-byte sequence: continuation bytes still expected, the
  // range the next one must fall in (the first after some leads is
  // narrower), and the lead byte, to name the error.
  std::uint8_t utf8_needed_ = 0;
  std::uint8_t utf8_low_ = 0x80, utf8_high_ = 0xBF;
  std::uint8_t utf8_lead_ = 0;
};

}  // namespace nfqtrace::coop
