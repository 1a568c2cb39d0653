// The packet-filter rules nfqtrace installs for itself, and removes again.
//
// Outgoing packets of the selected connections go to the queue (with queue
// bypass: they flow when nobody listens), or in dup mode are copied to NFLOG;
// our own probes, marked with `probe_mark`, are excluded. The peer's packets that tell us something (SACK
// blocks, FIN, RST; in mangle mode every acknowledgement) are copied to NFLOG.
//
// Two back ends: native nftables when the kernel has the nft `queue`
// expression, else iptables/ip6tables (xtables NFQUEUE target, which works
// with either the legacy or the nft variant of iptables).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::sys {

// The mark bits of nfqtrace's own probes (packet mark) and of connections
// whose trace is over (conntrack mark), unless --mark says otherwise.
inline constexpr std::uint32_t default_mark = 0x4e510000;

struct RuleSpec {
  std::uint16_t queue_id = 0;
  std::vector<std::uint16_t> dports;  // outgoing packets to these ports (client)
  std::vector<std::uint16_t> sports;  // outgoing packets from these ports (server)
  std::optional<wire::Address> host;  // only this peer; nullopt = any
  // Only the connection from this local port (with `dports`): a client that
  // traces its own connection and nothing else.
  std::optional<std::uint16_t> local_port;
  std::optional<std::string> out_interface;  // only packets leaving through it
  std::uint32_t probe_mark = default_mark;   // packets with (mark & probe_mark) == probe_mark skip the queue
  std::uint16_t nflog_group = 0;
  // Connections whose conntrack mark has all these bits skip both chains
  // (their trace is over); 0: no such rule.
  std::uint32_t bypass_mark = 0;
  // Connections whose mark has these bits as well skip the queue but have
  // their outgoing packets (but SYN, FIN, RST, which still come through the
  // queue) copied to `nflog_group`: they wait for a retransmission
  // (--trigger retransmit). 0: no such rule.
  std::uint32_t watch_mark = 0;
  // Connections whose mark has these bits as well skip the queue but not the
  // log of the peer's packets (a round waits for its answers). 0: no such
  // connections: the bypass covers the peer's packets too. With
  // copy_outgoing, a connection with all three (bypass, watch, round) has
  // its next packet copied, and then the rules leave it bypass and round.
  std::uint32_t round_mark = 0;
  bool log_all_peer_acks = false;  // mangle mode: every ACK, not only SACK/FIN/RST
  // ICMP time-exceeded and destination-unreachable reaching this host go
  // through the queue too: those that answer our probes are ours alone, and
  // are dropped there so that the connection's own TCP never sees them.
  bool queue_icmp = false;
  bool ipv4 = true, ipv6 = true;
  // Connections this host forwards (a gateway): their packets leave through
  // POSTROUTING as ours do, but the peer's packets and the routers' answers
  // to our probes (addressed to the inner host) pass FORWARD, not INPUT.
  bool forward = false;
  // Dup mode: the outgoing packets are copied to `nflog_group` (prefixed
  // outgoing_log_prefix) instead of queued. Nothing of the connection ever
  // waits for us then, so no packet of it can be held back behind one that
  // passed the queue by. Mangle mode sends the packets themselves: queued.
  bool copy_outgoing = false;
  // With copy_outgoing: a connection whose mark is watch_mark | round_mark
  // alone (no bypass_mark) is queued, not copied. Flows choose their mode
  // (a cooperating server's clients): one in mangle mode asks for the queue.
  bool queue_by_mark = false;
};

// Every conntrack mark bit the rules use, and the mark of a connection
// queued by queue_by_mark.
std::uint32_t all_mark_bits(const RuleSpec& spec);
std::uint32_t queued_mark(const RuleSpec& spec);

// Whether these rules hand over a round's next packet alone (Skip::wave: all
// three mark bits), then skip the connection again themselves.
bool one_copy_waves(const RuleSpec& spec);

enum class RulesBackend { nftables, xtables };

class Rules {
 public:
  // Removes leftovers of an earlier run with the same queue id, then installs
  // the rules. The whole set goes in atomically or not at all.
  static Result<Rules> install(const RuleSpec& spec);
  // Removes whatever rules an earlier run with this queue id left behind.
  static Status remove_leftovers(std::uint16_t queue_id);
  // Packets that matched our queue rules so far, with either back end: those
  // queued, and those let through untraced while the queue was full
  // (fail-open); 0 when there are no rules. QueueRuleCounter, read once.
  static Result<std::uint64_t> queued_packets(std::uint16_t queue_id);

  Rules(Rules&&) noexcept;
  Rules& operator=(Rules&&) noexcept;
  ~Rules();  // removes the rules if remove() was not called

  Status remove();
  // Someone else removes them (the rule keeper): this object no longer will.
  void release();
  // Which back end holds them (the tests check the choice).
  RulesBackend backend() const;

  // Added so the CLI can report, and the tests check, the back end choice
  // without installing anything:
  // The back end install() would use: NFQTRACE_RULES_BACKEND (nftables or
  // xtables) when set, else nftables when usable, else xtables.
  static Result<RulesBackend> choose_backend();
  // Whether nft is installed and the kernel has the nft queue expression.
  static bool nftables_usable();

 private:
  struct Impl;
  explicit Rules(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The packet counters of our queue rules for one queue id, for a reader
// that asks again and again (the rule keeper, every few seconds). The first
// read looks everywhere rules can be (the nft table, iptables, ip6tables)
// and remembers where they were; later reads run one command per place
// found (`nft list table`, or `iptables-save -c` and/or `ip6tables-save -c`)
// and none when nothing was there. Rules must not move between back ends
// after the first read (nfqtrace installs them once, before it).
class QueueRuleCounter {
 public:
  explicit QueueRuleCounter(std::uint16_t queue_id) : queue_id_(queue_id) {}
  // Packets that matched our queue rules so far: those queued, and those let
  // through untraced while the queue was full (fail-open); 0 when there are
  // no rules. An error when a tool fails.
  Result<std::uint64_t> read();

 private:
  Result<std::uint64_t> search();
  std::uint16_t queue_id_;
  bool searched_ = false;  // the places below are known
  bool nft_ = false, v4_ = false, v6_ = false;
};

}  // namespace nfqtrace::sys
