// Why a packet could not be read. Parsers of outside input never throw: they
// return a value or one of these reasons, which callers count.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nfqtrace/base/expected.hpp"

namespace nfqtrace::wire {

enum class ParseError : std::uint8_t {
  truncated,            // fewer bytes than the headers claim
  bad_version,          // neither IPv4 nor IPv6, or not the family expected
  bad_header_length,    // IHL, TCP data offset or extension length out of range
  bad_total_length,     // IP length field inconsistent with the bytes
  not_tcp,              // the transport is not TCP
  not_first_fragment,   // a later fragment carries no TCP header
  extension_chain,      // IPv6 extension headers too many or malformed
  not_icmp_error,       // an ICMP type we do not read
  bad_extension,        // RFC 4884 length or extension structure wrong
};
inline constexpr std::size_t parse_error_kinds = 9;

// How many inputs were refused, for each reason.
struct ParseErrorCounts {
  std::array<std::uint64_t, parse_error_kinds> by_reason{};
  void add(ParseError e) { ++by_reason[static_cast<std::size_t>(e)]; }
  std::uint64_t total() const;
};

std::string_view to_string(ParseError e);

// A parsed value or the reason there is none.
template <typename T>
using Parsed = Expected<T, ParseError>;

}  // namespace nfqtrace::wire
