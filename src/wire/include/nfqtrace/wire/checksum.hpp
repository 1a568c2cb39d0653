// The Internet checksum (RFC 1071) and the TCP pseudo-header sum.
#pragma once

#include <cstdint>

#include "nfqtrace/wire/address.hpp"
#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::wire {

// One's-complement sum of the bytes, not yet folded or inverted, so partial
// sums over several pieces can be added.
std::uint32_t checksum_add(std::uint32_t sum, Bytes data);
std::uint16_t checksum_fold(std::uint32_t sum);

// Sum of the TCP/UDP pseudo-header for either family (RFC 793, RFC 8200 8.1).
std::uint32_t pseudo_header_sum(const Address& src, const Address& dst,
                                std::uint8_t protocol, std::uint32_t length);

// RFC 1624 incremental update of a stored checksum when one 16-bit word changes.
std::uint16_t checksum_update16(std::uint16_t stored, std::uint16_t old_word,
                                std::uint16_t new_word);

}  // namespace nfqtrace::wire
