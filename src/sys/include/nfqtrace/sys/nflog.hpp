// NFLOG: copies of the peer's packets (its acknowledgements, SACK blocks,
// FIN and RST) logged by our rules. Nothing waits on us: logging never delays
// a packet.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::sys {

// Bytes copied of each of the peer's packets (by our rules, and asked of the
// log): the IP and TCP headers with their options, where the SACK blocks are.
inline constexpr std::uint16_t peer_copy_bytes = 128;

// Copies of our own outgoing packets, logged in place of queueing them (dup
// mode): as much as the queue hands over by default (QueueOptions), since a
// wave's probes copy distinct ranges of the packet's data, and with less of
// it a wave would be spread over more packets.
inline constexpr std::uint16_t outgoing_copy_bytes = 1280;
// The log prefix that tells an outgoing copy from a copy of the peer's
// packet (with --forward both may pass the same hooks).
inline constexpr std::string_view outgoing_log_prefix = "nfqtrace-out";

struct LoggedPacket {
  wire::Bytes data;            // captured bytes, starting at the IP header
  std::uint32_t wire_len = 0;  // the packet's full length
  core::Instant at;            // kernel timestamp when present, else read time
  bool outgoing = false;       // logged with outgoing_log_prefix
  std::uint32_t out_ifindex = 0;  // the interface it leaves by (0: none)
  std::uint32_t in_ifindex = 0;   // the interface it came in by (0: sent by this host)
};

class NfLog {
 public:
  static Result<NfLog> open(std::uint16_t group, std::uint32_t copy_range);
  NfLog(NfLog&&) noexcept;
  NfLog& operator=(NfLog&&) noexcept;
  ~NfLog();

  int fd() const;
  // Reads every pending message without blocking.
  Result<std::size_t> receive(const std::function<void(const LoggedPacket&)>& on_packet);
  // Copies the kernel dropped so far because our socket buffer was full.
  std::uint64_t lost() const;

 private:
  struct Impl;
  explicit NfLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nfqtrace::sys
