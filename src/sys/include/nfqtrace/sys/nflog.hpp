// NFLOG: copies of the peer's packets (its acknowledgements, SACK blocks,
// FIN and RST) logged by our rules. Nothing waits on us: logging never delays
// a packet.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::sys {

// Bytes copied of each of the peer's packets (by our rules, and asked of the
// log): the IP and TCP headers with their options, where the SACK blocks are.
inline constexpr std::uint16_t peer_copy_bytes = 128;

struct LoggedPacket {
  wire::Bytes data;            // captured bytes, starting at the IP header
  std::uint32_t wire_len = 0;  // the packet's full length
  core::Instant at;            // kernel timestamp when present, else read time
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

 private:
  struct Impl;
  explicit NfLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nfqtrace::sys
