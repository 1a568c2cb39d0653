// Packets from the queue: whatever a user's rule (or a GSO super-packet, or a
// truncated copy) hands us. Parsing must never read out of bounds, and a
// probe built from any packet that parses must itself parse back.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nfqtrace/wire/probe_builder.hpp"
#include "nfqtrace/wire/tcp_packet.hpp"

using namespace nfqtrace::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The first two bytes: how much longer the packet was than what we hold.
  const std::uint32_t extra = static_cast<std::uint32_t>(data[0]) << 8 | data[1];
  const Bytes captured(data + 2, size - 2);
  auto packet = parse_tcp_packet(captured, static_cast<std::uint32_t>(captured.size()) + extra);
  if (!packet) return 0;
  (void)parse_sack(packet->options());
  const auto timestamps = parse_timestamps(packet->options());

  std::vector<std::uint8_t> out(max_probe_size);
  ProbeFields fields;
  fields.seq = packet->seq + 1;
  fields.payload = packet->payload().first(std::min<std::size_t>(packet->payload().size(), 1));
  fields.ttl = 3;
  fields.tsval = 0x5eed;
  const std::size_t n = build_probe(*packet, fields, out);
  if (n > 0) {
    auto probe = parse_tcp_packet(Bytes(out.data(), n), static_cast<std::uint32_t>(n));
    if (!probe || probe->seq != fields.seq || probe->ttl != 3) __builtin_trap();
    // The timestamps option, if any, is still there, with the new value.
    const auto probe_timestamps = parse_timestamps(probe->options());
    if (timestamps.has_value() != probe_timestamps.has_value()) __builtin_trap();
    if (probe_timestamps && (probe_timestamps->val != 0x5eed || probe_timestamps->ecr != timestamps->ecr))
      __builtin_trap();
  }
  std::vector<std::uint8_t> whole(captured.begin(), captured.end());
  (void)complete_tcp_checksum(whole);
  (void)set_ttl(whole, 1);
  return 0;
}
