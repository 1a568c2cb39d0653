#include "address_lookup.hpp"

#include <functional>
#include <string_view>

namespace nfqtrace::cli {

void add_lookup_options(CLI::App& app, LookupOptions& options) {
  app.add_flag_callback("-n,--no-dns", [&options] { options.names = false; },
                        "do not look up the names of hop addresses (reverse DNS)");
  app.add_option("--asn-db", options.asn_db,
                 "the origin AS of hop addresses from FILE: an MMDB ASN database (GeoLite2/DB-IP "
                 "layout) or an ip2asn table (range_start range_end asn country name)")
      ->check(CLI::ExistingFile);
  app.add_flag("--asn-dns", options.asn_dns,
               "the origin AS of hop addresses from Team Cymru's DNS (origin.asn.cymru.com TXT), as mtr -z");
}

std::size_t AddressLookup::AddressHash::operator()(const wire::Address& a) const noexcept {
  const std::string_view bytes(reinterpret_cast<const char*>(a.bytes.data()), a.size());
  return std::hash<std::string_view>{}(bytes) ^ static_cast<std::size_t>(a.family);
}

sys::Result<std::unique_ptr<AddressLookup>> AddressLookup::create(sys::EventLoop& loop,
                                                                  const LookupOptions& options) {
  std::unique_ptr<AsnDb> db;
  if (options.asn_db) {
    std::string error;
    db = AsnDb::open(*options.asn_db, error);
    if (!db) return unexpected(sys::Error{error});
  }
  std::unique_ptr<DnsResolver> resolver;
  if (options.names || options.asn_dns) {
    auto r = DnsResolver::create(loop);
    if (!r) return unexpected(r.error());
    resolver = std::move(*r);
  }
  return std::make_unique<AddressLookup>(options, std::move(db), std::move(resolver));
}

AddressLookup::AddressLookup(const LookupOptions& options, std::unique_ptr<AsnDb> db,
                             std::unique_ptr<DnsResolver> resolver)
    : options_(options), db_(std::move(db)), resolver_(std::move(resolver)) {
  if (options_.cache_size == 0) options_.cache_size = 1;
  if (!resolver_) options_.names = options_.asn_dns = false;
  active_ = options_.names || db_ || options_.asn_dns;
}

AddressLookup::~AddressLookup() {
  resolver_.reset();  // drops the callbacks before what they write to goes
}

AddressLookup::Entry* AddressLookup::entry(const wire::Address& addr, std::uint64_t generation) {
  const auto it = entries_.find(addr);
  return it != entries_.end() && it->second.generation == generation ? &it->second : nullptr;
}

void AddressLookup::see(const wire::Address& addr) {
  if (!active_ || entries_.contains(addr)) return;
  while (entries_.size() >= options_.cache_size && !order_.empty()) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  const std::uint64_t generation = next_generation_++;
  Entry& e = entries_[addr];
  e.generation = generation;
  order_.push_back(addr);

  // Each answer finds its entry again: it may have been evicted meanwhile.
  if (options_.names) {
    ++counts_.name_lookups;
    resolver_->reverse(addr, [this, addr, generation](std::optional<std::string> name) {
      if (!name) {
        ++counts_.name_failures;
        return;
      }
      if (Entry* found = entry(addr, generation)) found->info.name = std::move(*name);
    });
  }
  if (!db_ && !options_.asn_dns) return;
  ++counts_.asn_lookups;
  if (db_) {
    if (auto record = db_->lookup(addr)) {
      e.info.asn = record->asn;
      e.info.as_name = std::move(record->name);
      return;
    }
  }
  if (!options_.asn_dns) {
    ++counts_.asn_failures;
    return;
  }
  resolver_->txt(cymru_origin_name(addr), [this, addr, generation](auto records) {
    const auto asn = records ? parse_cymru_origin(*records) : std::nullopt;
    if (!asn) {
      ++counts_.asn_failures;
      return;
    }
    asn_found(addr, generation, *asn);
  });
}

void AddressLookup::asn_found(const wire::Address& addr, std::uint64_t generation, std::uint32_t asn) {
  Entry* e = entry(addr, generation);
  if (e == nullptr) return;
  e->info.asn = asn;
  if (const auto known = as_names_.find(asn); known != as_names_.end()) {
    e->info.as_name = known->second;
    return;
  }
  auto& waiting = as_waiting_[asn];
  waiting.emplace_back(addr, generation);
  if (waiting.size() > 1) return;  // asked already
  resolver_->txt(cymru_as_name_query(asn), [this, asn](auto records) {
    const std::string name = records ? parse_cymru_as_name(*records) : std::string();
    if (as_names_.size() >= options_.cache_size) as_names_.erase(as_names_.begin());
    as_names_[asn] = name;
    const auto waiters = std::move(as_waiting_[asn]);
    as_waiting_.erase(asn);
    for (const auto& [a, g] : waiters)
      if (Entry* found = entry(a, g)) found->info.as_name = name;
  });
}

void AddressLookup::hop(const core::HopEvent& hop, Direction /*direction*/) { see(hop.reply.addr); }

void AddressLookup::trace(const core::TraceResult& trace, Direction /*direction*/) {
  for (const core::Hop& h : trace.hops)
    for (const core::Reply& r : h.replies) see(r.addr);
}

void AddressLookup::path_change(const core::PathChange& change) {
  for (const auto& at : change.changes)
    for (const wire::Address& a : at.to) see(a);
}

const output::AddressInfo* AddressLookup::find(const wire::Address& addr) const {
  const auto it = entries_.find(addr);
  if (it == entries_.end()) return nullptr;
  const output::AddressInfo& info = it->second.info;
  return info.name.empty() && !info.asn ? nullptr : &info;
}

}  // namespace nfqtrace::cli
