#include "nfqtrace/coop/message.hpp"

namespace nfqtrace::coop {
namespace {

// The length of the well-formed UTF-8 sequence at text[i] and its code point,
// or 0 when there is none.
std::size_t utf8_sequence(std::string_view text, std::size_t i, char32_t& code_point) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  char32_t min = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, min = 0x80, code_point = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, min = 0x800, code_point = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, min = 0x10000, code_point = lead & 0x07u;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = i + 1; k < i + length; ++k) {
    if ((byte(k) & 0xC0u) != 0x80u) return 0;
    code_point = (code_point << 6) | (byte(k) & 0x3Fu);
  }
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (code_point < min || surrogate || code_point > 0x10FFFF) return 0;
  return length;
}

// C0, DEL and C1: what a terminal might act on.
bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

}  // namespace

std::string printable(std::string_view text, std::size_t max_bytes) {
  constexpr std::string_view ellipsis = "...";
  // Every byte maps to one byte or stays in its sequence: the output is as
  // long as the input, so only a text longer than the limit is cut.
  const bool cut = text.size() > max_bytes;
  const std::size_t budget = cut ? max_bytes - std::min(max_bytes, ellipsis.size()) : max_bytes;
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  for (std::size_t i = 0; i < text.size();) {
    char32_t c = 0;
    const std::size_t length = utf8_sequence(text, i, c);
    const bool keep = length > 0 && !is_control(c);
    const std::size_t step = keep ? length : 1;
    if (out.size() + step > budget) break;
    if (keep) out.append(text.substr(i, length));
    else out.push_back('?');
    i += step;
  }
  if (cut) out += ellipsis.substr(0, max_bytes - out.size());
  return out;
}

}  // namespace nfqtrace::coop
