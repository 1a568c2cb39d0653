#include "nfqtrace/wire/checksum.hpp"

namespace nfqtrace::wire {

std::uint32_t checksum_add(std::uint32_t sum, Bytes data) {
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += load16(data, i);
  if (i < data.size()) sum += std::uint32_t{data[i]} << 8;
  // Fold early so long inputs cannot overflow 32 bits.
  return (sum & 0xffff) + (sum >> 16);
}

std::uint16_t checksum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::uint32_t pseudo_header_sum(const Address& src, const Address& dst,
                                std::uint8_t protocol, std::uint32_t length) {
  std::uint32_t sum = checksum_add(0, src.view());
  sum = checksum_add(sum, dst.view());
  sum += protocol;
  sum += length >> 16;
  sum += length & 0xffff;
  return sum;
}

std::uint16_t checksum_update16(std::uint16_t stored, std::uint16_t old_word,
                                std::uint16_t new_word) {
  // HC' = ~(~HC + ~m + m')
  std::uint32_t sum = static_cast<std::uint16_t>(~stored);
  sum += static_cast<std::uint16_t>(~old_word);
  sum += new_word;
  return checksum_fold(sum);
}

}  // namespace nfqtrace::wire
