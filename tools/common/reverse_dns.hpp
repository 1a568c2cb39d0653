// Asynchronous DNS for the tools: reverse (PTR) names of hop addresses and
// TXT records (Team Cymru's AS data), through c-ares with the system's
// resolver configuration (/etc/resolv.conf, /etc/hosts), its sockets
// watched by the tools' sys::EventLoop and its time-outs kept by a
// sys::Timer of its own (the loop's deadline timer is the tracer's).
// Nothing here blocks: a query's callback runs from the loop, later.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/timer.hpp"
#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::cli {

class DnsResolver {
 public:
  // nullopt: no answer (no such name, time-out, server failure).
  using NameCallback = std::function<void(std::optional<std::string> name)>;
  // Each TXT record's strings joined; nullopt when there is none.
  using TxtCallback = std::function<void(std::optional<std::vector<std::string>> records)>;

  // Reads the resolver configuration; an error when c-ares cannot start.
  static sys::Result<std::unique_ptr<DnsResolver>> create(sys::EventLoop& loop);
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;
  // Pending callbacks are dropped, not called.
  ~DnsResolver();

  void reverse(const wire::Address& addr, NameCallback done);
  void txt(const std::string& name, TxtCallback done);
  // Queries asked and not answered yet.
  std::size_t pending() const { return pending_; }

 private:
  struct Channel;
  DnsResolver(sys::EventLoop& loop, sys::Timer timer);
  void socket_state(int fd, bool readable, bool writable);
  void process(int read_fd, int write_fd);
  void rearm();

  sys::EventLoop& loop_;
  sys::Timer timer_;
  std::unique_ptr<Channel> channel_;
  std::unordered_set<int> watched_;
  std::size_t pending_ = 0;
  bool destroying_ = false;
};

// Team Cymru's IP-to-ASN data over DNS, as mtr -z asks it.
// "4.3.2.1.origin.asn.cymru.com" for 1.2.3.4, the reversed nibbles under
// "origin6.asn.cymru.com" for IPv6.
std::string cymru_origin_name(const wire::Address& addr);
// "AS64500.asn.cymru.com"
std::string cymru_as_name_query(std::uint32_t asn);
// The origin AS in records like "64500 | 198.18.0.0/15 | ZZ | other | 2026-01-01"
// (several ASes before the first '|': the first); of several records, the
// one with the longest prefix. nullopt when none parses.
std::optional<std::uint32_t> parse_cymru_origin(const std::vector<std::string>& records);
// The AS name in "64500 | ZZ | other | 2026-01-01 | EXAMPLE-NET Example, ZZ";
// empty when there is none.
std::string parse_cymru_as_name(const std::vector<std::string>& records);

}  // namespace nfqtrace::cli
