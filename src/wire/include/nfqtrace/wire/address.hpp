// An IPv4 or IPv6 address as plain bytes, cheap to copy, hash and compare.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::wire {

enum class Family : std::uint8_t { v4 = 4, v6 = 6 };

struct Address {
  Family family = Family::v4;
  // IPv4 uses the first 4 bytes; the rest stay zero so comparison is exact.
  std::array<std::uint8_t, 16> bytes{};

  static Address v4(Bytes four);
  static Address v6(Bytes sixteen);
  // Parses dotted-quad or RFC 5952 text; nullopt on anything else.
  static std::optional<Address> parse(std::string_view text);

  std::size_t size() const { return family == Family::v4 ? 4 : 16; }
  Bytes view() const { return Bytes(bytes.data(), size()); }
  std::string to_string() const;

  auto operator<=>(const Address&) const = default;
};

}  // namespace nfqtrace::wire
