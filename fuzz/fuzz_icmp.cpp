// ICMP and ICMPv6 errors: anyone on the Internet can send them, with any
// lengths, quotes and RFC 4884 extensions. Read as raw sockets deliver them
// and as the queue does (whole packets, perhaps cut short).
#include <cstddef>
#include <cstdint>

#include "nfqtrace/wire/icmp_error.hpp"

using namespace nfqtrace::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Bytes message(data + 1, size - 1);
  if (data[0] & 1) {
    static const Address from = *Address::parse("2001:db8:1::1");
    static const Address to = *Address::parse("2001:db8::2");
    auto e = parse_icmp6(message, from, to, 64);
    if (e && e->extensions.size() > message.size()) __builtin_trap();
  } else {
    auto e = parse_icmp4(message);
    if (e && e->extensions.size() > message.size()) __builtin_trap();
  }
  // As the queue hands them over: a whole IP packet, its copy maybe cut
  // short (the first byte says how much longer it was).
  const auto wire_len = static_cast<std::uint32_t>(message.size() + (data[0] >> 1) * 16u);
  auto q = parse_icmp_packet(message, wire_len);
  if (q && (q->extensions.size() > message.size() ||
            (wire_len > message.size() && !q->extensions.empty())))
    __builtin_trap();
  return 0;
}
