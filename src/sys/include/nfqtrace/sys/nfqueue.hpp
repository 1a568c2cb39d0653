// The Netfilter queue (NFQUEUE) through libmnl and libnetfilter_queue's
// message helpers. Verdicts are batched: plain accepts are remembered and sent
// as one NFQNL_MSG_VERDICT_BATCH per read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nfqtrace/core/time.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/wire/bytes.hpp"

namespace nfqtrace::sys {

struct QueueOptions {
  std::uint16_t queue_id = 0;
  std::uint32_t max_len = 10000;    // NFQA_CFG_QUEUE_MAXLEN
  // Bytes of each packet copied to us: the headers and payload the probes
  // copy, and a whole ICMP error with its RFC 4884 extensions (an ICMPv6
  // error fits in 1280 bytes; an ICMPv4 one in 576).
  std::uint32_t copy_range = 1280;
  bool fail_open = true;            // NFQA_CFG_F_FAIL_OPEN: accept when full
  bool gso = true;                  // NFQA_CFG_F_GSO: GSO packets unsegmented
};

struct QueuedPacket {
  std::uint32_t id = 0;
  wire::Bytes data;              // captured bytes, starting at the IP header
  std::uint32_t wire_len = 0;    // full length (NFQA_CAP_LEN when cut)
  std::uint32_t out_ifindex = 0; // NFQA_IFINDEX_OUTDEV, 0 if none
  std::uint32_t in_ifindex = 0;  // NFQA_IFINDEX_INDEV, 0 if none
  std::uint32_t mark = 0;
  bool checksum_not_ready = false;  // NFQA_SKB_CSUMNOTREADY
  bool gso = false;                 // NFQA_SKB_GSO
  std::int64_t stamp_ns = 0;        // NFQA_TIMESTAMP (realtime), 0 if none
};

// When a queued packet arrived: the kernel's stamp, else now.
core::Instant arrival_time(const QueuedPacket& packet);

// Kernel-side counters of the queue, from /proc/net/netfilter/nfnetlink_queue.
struct QueueCounters {
  std::uint64_t queue_dropped = 0;  // packets the queue had no room for
  std::uint64_t user_dropped = 0;   // messages netlink could not deliver to us
};

class NfQueue {
 public:
  // Binds the queue. A queue already bound by another process is an error
  // naming that fact, never taken over.
  static Result<NfQueue> open(const QueueOptions& options);

  NfQueue(NfQueue&&) noexcept;
  NfQueue& operator=(NfQueue&&) noexcept;
  ~NfQueue();  // unbinds

  int fd() const;

  // Reads every message pending on the socket without blocking and calls
  // `on_packet` for each packet. The callback must give each packet exactly
  // one verdict through accept() or accept_modified() before it returns.
  // Returns the number of packets read. Accepts still pending when it
  // returns are flushed, so no packet waits for the next read.
  Result<std::size_t> receive(const std::function<void(const QueuedPacket&)>& on_packet);

  void accept(std::uint32_t id);  // batched until flush_verdicts()
  // Accepts with the packet replaced by `whole_packet` (all of it: a verdict
  // carrying fewer bytes than the packet would truncate it). Pending accepts
  // are flushed first, so the packet does not overtake earlier ones.
  // The kernel takes the replacement as fully checksummed (it sets
  // CHECKSUM_NONE): for a packet queued with checksum_not_ready, the TCP/UDP
  // checksum must be completed first, or the packet leaves with a bad one.
  Status accept_modified(std::uint32_t id, wire::Bytes whole_packet);
  // Drops the packet (one that is ours alone). Pending accepts are flushed
  // first: a batch verdict covers every id up to its own.
  Status drop(std::uint32_t id);
  Status flush_verdicts();

  Result<QueueCounters> counters() const;

 private:
  struct Impl;
  explicit NfQueue(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nfqtrace::sys
