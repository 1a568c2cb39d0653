#include "asn_db.hpp"

#include <maxminddb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <unordered_map>

namespace nfqtrace::cli {
namespace {

// What starts an MMDB file's metadata section (the MaxMind DB spec).
constexpr std::string_view mmdb_marker{"\xAB\xCD\xEFMaxMind.com", 14};
constexpr std::size_t mmdb_tail = 128 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

class MmdbAsnDb final : public AsnDb {
 public:
  explicit MmdbAsnDb(MMDB_s db) : db_(db) {}
  MmdbAsnDb(const MmdbAsnDb&) = delete;
  MmdbAsnDb& operator=(const MmdbAsnDb&) = delete;
  ~MmdbAsnDb() override { MMDB_close(&db_); }

  std::optional<AsnRecord> lookup(const wire::Address& addr) const override {
    sockaddr_storage ss{};
    if (addr.family == wire::Family::v4) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::copy_n(addr.bytes.begin(), 4, reinterpret_cast<std::uint8_t*>(&sin->sin_addr));
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::copy_n(addr.bytes.begin(), 16, sin6->sin6_addr.s6_addr);
    }
    int mmdb_error = MMDB_SUCCESS;
    // libmaxminddb takes a non-const database but only reads it.
    MMDB_lookup_result_s found = MMDB_lookup_sockaddr(const_cast<MMDB_s*>(&db_),
                                                      reinterpret_cast<const sockaddr*>(&ss), &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS || !found.found_entry) return std::nullopt;
    MMDB_entry_data_s data{};
    if (MMDB_get_value(&found.entry, &data, "autonomous_system_number", nullptr) != MMDB_SUCCESS ||
        !data.has_data)
      return std::nullopt;
    AsnRecord record;
    switch (data.type) {
      case MMDB_DATA_TYPE_UINT32: record.asn = data.uint32; break;
      case MMDB_DATA_TYPE_UINT16: record.asn = data.uint16; break;
      case MMDB_DATA_TYPE_INT32: record.asn = static_cast<std::uint32_t>(data.int32); break;
      case MMDB_DATA_TYPE_UINT64: record.asn = static_cast<std::uint32_t>(data.uint64); break;
      default: return std::nullopt;
    }
    if (record.asn == 0) return std::nullopt;
    if (MMDB_get_value(&found.entry, &data, "autonomous_system_organization", nullptr) == MMDB_SUCCESS &&
        data.has_data && data.type == MMDB_DATA_TYPE_UTF8_STRING)
      record.name.assign(data.utf8_string, data.data_size);
    return record;
  }

 private:
  MMDB_s db_;
};

}  // namespace

bool looks_like_mmdb(std::string_view tail) { return tail.find(mmdb_marker) != std::string_view::npos; }

std::unique_ptr<AsnDb> AsnDb::open(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "--asn-db " + path + ": cannot be read";
    return nullptr;
  }
  // The MMDB marker is near the end: read that much first, the whole file
  // only for a table.
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
  const std::size_t tail_size = std::min(size, mmdb_tail);
  std::string tail(tail_size, '\0');
  in.seekg(static_cast<std::streamoff>(size - tail_size));
  in.read(tail.data(), static_cast<std::streamsize>(tail_size));
  if (!in) {
    error = "--asn-db " + path + ": cannot be read";
    return nullptr;
  }
  if (looks_like_mmdb(tail)) {
    MMDB_s db{};
    const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &db);
    if (status != MMDB_SUCCESS) {
      error = "--asn-db " + path + ": " + MMDB_strerror(status);
      return nullptr;
    }
    return std::make_unique<MmdbAsnDb>(db);
  }
  std::string text(size, '\0');
  in.seekg(0);
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) {
    error = "--asn-db " + path + ": cannot be read";
    return nullptr;
  }
  const std::string_view view(text);
  std::string why;
  auto table = TsvAsnDb::parse(view, why);
  if (!table) {
    error = "--asn-db " + path + ": neither an MMDB file nor an ip2asn table (" + why + ")";
    return nullptr;
  }
  return table;
}

std::unique_ptr<TsvAsnDb> TsvAsnDb::parse(std::string_view text, std::string& error) {
  auto db = std::unique_ptr<TsvAsnDb>(new TsvAsnDb());
  std::unordered_map<std::string, std::uint32_t> name_index;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    std::string_view fields[5];
    std::size_t n = 0;
    while (n < 5) {
      const std::size_t tab = n < 4 ? line.find('\t') : std::string_view::npos;
      fields[n++] = line.substr(0, tab);
      if (tab == std::string_view::npos) break;
      line.remove_prefix(tab + 1);
    }
    const auto bad = [&](std::string_view what) {
      error = "line " + std::to_string(line_no) + ": " + std::string(what);
      return nullptr;
    };
    if (n < 3) return bad("expected range_start, range_end, asn, country, name separated by tabs");
    const auto first = wire::Address::parse(trim(fields[0]));
    const auto last = wire::Address::parse(trim(fields[1]));
    if (!first || !last) return bad("not an address range");
    if (first->family != last->family) return bad("the range's ends are of different families");
    if (last->bytes < first->bytes) return bad("the range ends before it starts");
    std::uint32_t asn = 0;
    const std::string_view asn_text = trim(fields[2]);
    const auto [end, ec] = std::from_chars(asn_text.data(), asn_text.data() + asn_text.size(), asn);
    if (ec != std::errc{} || end != asn_text.data() + asn_text.size() || asn_text.empty())
      return bad("not an AS number");
    if (asn == 0) continue;  // "Not routed"
    Range r;
    r.first = first->bytes;
    r.last = last->bytes;
    r.asn = asn;
    std::string name(n == 5 ? trim(fields[4]) : std::string_view{});
    const auto [it, added] = name_index.try_emplace(name, static_cast<std::uint32_t>(db->names_.size()));
    if (added) db->names_.push_back(std::move(name));
    r.name = it->second;
    (first->family == wire::Family::v4 ? db->v4_ : db->v6_).push_back(r);
  }
  for (auto* list : {&db->v4_, &db->v6_})
    std::sort(list->begin(), list->end(), [](const Range& a, const Range& b) { return a.first < b.first; });
  return db;
}

std::optional<AsnRecord> TsvAsnDb::lookup(const wire::Address& addr) const {
  const auto& list = addr.family == wire::Family::v4 ? v4_ : v6_;
  // The last range starting at or before addr; ranges do not overlap.
  auto it = std::upper_bound(list.begin(), list.end(), addr.bytes,
                             [](const std::array<std::uint8_t, 16>& a, const Range& r) { return a < r.first; });
  if (it == list.begin()) return std::nullopt;
  --it;
  if (addr.bytes > it->last) return std::nullopt;
  return AsnRecord{it->asn, names_[it->name]};
}

}  // namespace nfqtrace::cli
