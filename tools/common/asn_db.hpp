// --asn-db FILE: the origin AS of an address from an offline table, either
// an MMDB file with the ASN layout of the free GeoLite2 / DB-IP ASN
// databases (read with libmaxminddb) or the tab-separated table of the free
// ip2asn data ("range_start range_end asn country name", IPv4 and IPv6 in
// one file). Which of the two a file is, its content says.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nfqtrace/wire/address.hpp"

namespace nfqtrace::cli {

struct AsnRecord {
  std::uint32_t asn = 0;
  std::string name;  // empty when the table has none

  bool operator==(const AsnRecord&) const = default;
};

class AsnDb {
 public:
  virtual ~AsnDb() = default;
  // The AS announcing `addr`; nullopt when the table has none (or AS 0,
  // ip2asn's "not routed").
  virtual std::optional<AsnRecord> lookup(const wire::Address& addr) const = 0;

  // Opens either kind of file; nullptr and `error` when it is neither or
  // cannot be read.
  static std::unique_ptr<AsnDb> open(const std::string& path, std::string& error);
};

// The ip2asn table, held as sorted ranges (one list per family) searched by
// bisection.
class TsvAsnDb final : public AsnDb {
 public:
  // Parses the whole text; lines that are blank or start with '#' are
  // skipped. nullptr and `error` (with the line number) on a malformed line
  // or a range whose ends are not both of one family.
  static std::unique_ptr<TsvAsnDb> parse(std::string_view text, std::string& error);
  std::optional<AsnRecord> lookup(const wire::Address& addr) const override;
  std::size_t size() const { return v4_.size() + v6_.size(); }

 private:
  struct Range {
    std::array<std::uint8_t, 16> first{}, last{};
    std::uint32_t asn = 0;
    std::uint32_t name = 0;  // index into names_
  };
  std::vector<Range> v4_, v6_;
  std::vector<std::string> names_;
};

// Whether `tail`, a file's last 128 KiB (or all of a smaller one), holds
// the marker that starts an MMDB file's metadata.
bool looks_like_mmdb(std::string_view tail);

}  // namespace nfqtrace::cli
