#include "nfqtrace/wire/parse.hpp"

namespace nfqtrace::wire {

std::string_view to_string(ParseError e) {
  switch (e) {
    case ParseError::truncated: return "truncated";
    case ParseError::bad_version: return "bad_version";
    case ParseError::bad_header_length: return "bad_header_length";
    case ParseError::bad_total_length: return "bad_total_length";
    case ParseError::not_tcp: return "not_tcp";
    case ParseError::not_first_fragment: return "not_first_fragment";
    case ParseError::extension_chain: return "extension_chain";
    case ParseError::not_icmp_error: return "not_icmp_error";
    case ParseError::bad_extension: return "bad_extension";
  }
  return "unknown";
}

std::uint64_t ParseErrorCounts::total() const {
  std::uint64_t sum = 0;
  for (std::uint64_t n : by_reason) sum += n;
  return sum;
}

}  // namespace nfqtrace::wire
