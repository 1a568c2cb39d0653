// How field values and endpoints read, in both formats (private to
// src/output).
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "nfqtrace/core/quote_diff.hpp"

namespace nfqtrace::output::detail {

inline std::string hex(const std::vector<std::uint8_t>& bytes) {
  std::string out;
  for (std::uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

// A value as text: numbers in decimal, addresses as usual, bytes in hex.
inline std::string value_text(const core::FieldValue& value) {
  if (const auto* n = std::get_if<std::uint64_t>(&value)) return std::to_string(*n);
  if (const auto* a = std::get_if<wire::Address>(&value)) return a->to_string();
  const auto& bytes = std::get<std::vector<std::uint8_t>>(value);
  return bytes.empty() ? "none" : hex(bytes);
}

}  // namespace nfqtrace::output::detail
