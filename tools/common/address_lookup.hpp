// What the tools learn of hop addresses besides the address: reverse DNS
// names and origin AS numbers. AddressLookup watches the results (a
// ResultConsumer, added first to cli::Results so it sees an address before
// any format writes it), asks for a name / AS the first time it sees an
// address, and keeps the answers in a bounded cache the formats read (an
// output::AddressBook). It never holds a result back: an answer that comes
// later shows in later results.
//
// Wiring, in a tool's main (`loop` is its sys::EventLoop):
//   auto lookup = cli::AddressLookup::create(loop, options.lookup);  // Result<unique_ptr>
//   if (!lookup) return fail(lookup.error());
//   const output::AddressBook* book = (*lookup)->book();   // nullptr: nothing looked up
//   results.add(std::move(*lookup));                        // first
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>

#include "asn_db.hpp"
#include "nfqtrace/output/address_book.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "results.hpp"
#include "reverse_dns.hpp"

namespace nfqtrace::cli {

struct LookupOptions {
  bool names = true;              // reverse DNS; -n / --no-dns turns it off
  std::optional<std::string> asn_db;  // --asn-db FILE
  bool asn_dns = false;           // --asn-dns: Team Cymru's TXT records
  std::size_t cache_size = 4096;  // addresses remembered (oldest forgotten first)

  // Whether anything is looked up at all.
  bool any() const { return names || asn_db || asn_dns; }
};

// -n/--no-dns, --asn-db FILE, --asn-dns.
void add_lookup_options(CLI::App& app, LookupOptions& options);

// Look-ups asked and failed since the start, for the metrics. A name look-up
// fails on no PTR record, a time-out or a server failure; an AS look-up when
// neither the table nor DNS knows the address's AS.
struct LookupCounts {
  std::uint64_t name_lookups = 0;
  std::uint64_t name_failures = 0;
  std::uint64_t asn_lookups = 0;
  std::uint64_t asn_failures = 0;
};

class AddressLookup final : public ResultConsumer, public output::AddressBook {
 public:
  // Opens --asn-db and starts the resolver when names or --asn-dns want
  // one; an error for an unreadable table or a resolver that cannot start.
  static sys::Result<std::unique_ptr<AddressLookup>> create(sys::EventLoop& loop,
                                                            const LookupOptions& options);
  // For tests and other sources: a table of one's own, a resolver or none.
  AddressLookup(const LookupOptions& options, std::unique_ptr<AsnDb> db,
                std::unique_ptr<DnsResolver> resolver);
  AddressLookup(const AddressLookup&) = delete;
  AddressLookup& operator=(const AddressLookup&) = delete;
  ~AddressLookup() override;

  // This, or nullptr when nothing is looked up (what the formats take).
  const output::AddressBook* book() const { return active_ ? this : nullptr; }
  const LookupCounts& counts() const { return counts_; }
  // Addresses in the cache.
  std::size_t size() const { return entries_.size(); }

  // Starts the look-ups of `addr` the first time it is seen.
  void see(const wire::Address& addr);

  // ResultConsumer: every reply's address.
  void hop(const core::HopEvent& hop, Direction direction) override;
  void trace(const core::TraceResult& trace, Direction direction) override;
  void path_change(const core::PathChange& change) override;

  // AddressBook: nullptr until a name or an AS is known.
  const output::AddressInfo* find(const wire::Address& addr) const override;

 private:
  struct Entry {
    output::AddressInfo info;
    std::uint64_t generation = 0;  // tells a re-added address's answers from stale ones
  };
  struct AddressHash {
    std::size_t operator()(const wire::Address& a) const noexcept;
  };
  Entry* entry(const wire::Address& addr, std::uint64_t generation);
  void asn_found(const wire::Address& addr, std::uint64_t generation, std::uint32_t asn);

  LookupOptions options_;
  std::unique_ptr<AsnDb> db_;
  std::unique_ptr<DnsResolver> resolver_;
  std::unordered_map<wire::Address, Entry, AddressHash> entries_;
  std::deque<wire::Address> order_;  // oldest first, for eviction
  std::uint64_t next_generation_ = 1;
  // --asn-dns: AS names by number (bounded too), and the addresses waiting
  // for a name being asked.
  std::unordered_map<std::uint32_t, std::string> as_names_;
  std::unordered_map<std::uint32_t, std::vector<std::pair<wire::Address, std::uint64_t>>> as_waiting_;
  LookupCounts counts_;
  bool active_ = false;  // something to look up with
};

}  // namespace nfqtrace::cli
