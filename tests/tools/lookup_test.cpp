// The look-up parts of tools/common: the ASN tables (ip2asn TSV, MMDB),
// Team Cymru's TXT records, and AddressLookup's cache and counts.
#include <gtest/gtest.h>

#include <fstream>

#include "address_lookup.hpp"
#include "asn_db.hpp"
#include "reverse_dns.hpp"

namespace nfqtrace::cli {
namespace {

wire::Address addr(const char* text) { return *wire::Address::parse(text); }

const std::string data_dir = NFQTRACE_TEST_DATA;

TEST(TsvAsnDb, FindsTheRangeOfEitherFamily) {
  std::string error;
  const auto db = TsvAsnDb::parse(
      "2001:db8:1::\t2001:db8:1:ffff:ffff:ffff:ffff:ffff\t64501\tZZ\tSIX\n"
      "198.18.2.0\t198.18.2.255\t64502\tZZ\tTWO NET\r\n"
      "\n"
      "198.18.1.0\t198.18.1.127\t64500\tZZ\tONE\n"
      "198.18.3.0\t198.18.3.255\t0\tNone\tNot routed\n",
      error);
  ASSERT_TRUE(db) << error;
  EXPECT_EQ(db->size(), 3u);  // "Not routed" is no AS
  EXPECT_EQ(db->lookup(addr("198.18.1.0")), (AsnRecord{64500, "ONE"}));
  EXPECT_EQ(db->lookup(addr("198.18.1.127")), (AsnRecord{64500, "ONE"}));
  EXPECT_EQ(db->lookup(addr("198.18.1.128")), std::nullopt);
  EXPECT_EQ(db->lookup(addr("198.18.2.77")), (AsnRecord{64502, "TWO NET"}));
  EXPECT_EQ(db->lookup(addr("198.18.3.1")), std::nullopt);
  EXPECT_EQ(db->lookup(addr("198.18.0.255")), std::nullopt);
  EXPECT_EQ(db->lookup(addr("2001:db8:1:5::1")), (AsnRecord{64501, "SIX"}));
  EXPECT_EQ(db->lookup(addr("2001:db8:2::1")), std::nullopt);
  // An IPv4 address is not found in IPv6 ranges, nor the other way.
  EXPECT_EQ(db->lookup(addr("::198.18.1.1")), std::nullopt);
}

TEST(TsvAsnDb, RefusesMalformedLines) {
  std::string error;
  EXPECT_FALSE(TsvAsnDb::parse("198.18.1.0\t198.18.1.255\t64500\tZZ\tOK\nnot a table\n", error));
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_FALSE(TsvAsnDb::parse("198.18.1.0\t2001:db8::1\t64500\tZZ\tX\n", error));
  EXPECT_FALSE(TsvAsnDb::parse("198.18.1.9\t198.18.1.1\t64500\tZZ\tX\n", error));
  EXPECT_FALSE(TsvAsnDb::parse("198.18.1.0\t198.18.1.9\tAS64500\tZZ\tX\n", error));
  EXPECT_NE(error.find("AS number"), std::string::npos) << error;
}

TEST(AsnDb, OpensTheTsvTable) {
  std::string error;
  const auto db = AsnDb::open(data_dir + "/asn.tsv", error);
  ASSERT_TRUE(db) << error;
  EXPECT_EQ(db->lookup(addr("198.18.2.2")), (AsnRecord{64522, "TSV-HOP-2"}));
  EXPECT_EQ(db->lookup(addr("2001:db8:1:3::2")), (AsnRecord{64523, "TSV-HOP-3"}));
  EXPECT_EQ(db->lookup(addr("198.19.1.2")), (AsnRecord{64541, "TSV-BACK-1"}));
  EXPECT_EQ(db->lookup(addr("198.20.0.1")), std::nullopt);
}

TEST(AsnDb, OpensTheMmdbFile) {
  std::string error;
  const auto db = AsnDb::open(data_dir + "/asn.mmdb", error);
  ASSERT_TRUE(db) << error;
  EXPECT_EQ(db->lookup(addr("198.18.2.2")), (AsnRecord{64512, "MMDB-HOP-2"}));
  EXPECT_EQ(db->lookup(addr("2001:db8:1:3::2")), (AsnRecord{64513, "MMDB-HOP-3"}));
  EXPECT_EQ(db->lookup(addr("2001:db8:2:1::2")), (AsnRecord{64531, "MMDB-BACK-1"}));
  EXPECT_EQ(db->lookup(addr("198.20.0.1")), std::nullopt);
  EXPECT_EQ(db->lookup(addr("2001:db8:9::1")), std::nullopt);
}

TEST(AsnDb, SaysWhatIsWrongWithAFile) {
  std::string error;
  EXPECT_FALSE(AsnDb::open(data_dir + "/no-such-file", error));
  EXPECT_NE(error.find("cannot be read"), std::string::npos) << error;
  const std::string path = ::testing::TempDir() + "/not-a-table";
  std::ofstream(path) << "hello\n";
  EXPECT_FALSE(AsnDb::open(path, error));
  EXPECT_NE(error.find("neither an MMDB file nor an ip2asn table"), std::string::npos) << error;
  // A cut MMDB file still has its metadata marker: libmaxminddb says why.
  std::ifstream in(data_dir + "/asn.mmdb", std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(path, std::ios::binary) << whole.substr(whole.size() / 2);
  EXPECT_FALSE(AsnDb::open(path, error));
  EXPECT_EQ(error.find("neither"), std::string::npos) << error;
}

TEST(Cymru, QueryNames) {
  EXPECT_EQ(cymru_origin_name(addr("198.18.2.1")), "1.2.18.198.origin.asn.cymru.com");
  EXPECT_EQ(cymru_origin_name(addr("2001:db8:1:2::1")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.origin6.asn.cymru.com");
  EXPECT_EQ(cymru_as_name_query(64500), "AS64500.asn.cymru.com");
}

TEST(Cymru, OriginRecords) {
  EXPECT_EQ(parse_cymru_origin({"23028 | 216.90.108.0/24 | US | arin | 1998-09-25"}), 23028u);
  // Several ASes announce the prefix: the first.
  EXPECT_EQ(parse_cymru_origin({"64500 64501 | 198.18.0.0/15 | ZZ | other |"}), 64500u);
  // Several records: the most specific prefix.
  EXPECT_EQ(parse_cymru_origin({"64500 | 198.18.0.0/15 | ZZ | other | 2026-01-01",
                                "64502 | 198.18.2.0/24 | ZZ | other | 2026-01-01",
                                "64501 | 198.18.0.0/16 | ZZ | other | 2026-01-01"}),
            64502u);
  EXPECT_EQ(parse_cymru_origin({"NA | 198.18.0.0/15"}), std::nullopt);
  EXPECT_EQ(parse_cymru_origin({""}), std::nullopt);
  EXPECT_EQ(parse_cymru_origin({}), std::nullopt);
}

TEST(Cymru, AsNameRecords) {
  EXPECT_EQ(parse_cymru_as_name({"23028 | US | arin | 2002-01-04 | TEAM-CYMRU - Team Cymru Inc., US"}),
            "TEAM-CYMRU - Team Cymru Inc., US");
  EXPECT_EQ(parse_cymru_as_name({"64500 | ZZ | other | 2026-01-01"}), "");
  EXPECT_EQ(parse_cymru_as_name({}), "");
}

TEST(AddressLookup, FromATableAtOnceAndCounted) {
  LookupOptions options;
  options.names = false;
  std::string error;
  AddressLookup lookup(options, AsnDb::open(data_dir + "/asn.tsv", error), nullptr);
  ASSERT_NE(lookup.book(), nullptr);
  EXPECT_EQ(lookup.find(addr("198.18.1.2")), nullptr);  // not seen yet
  core::HopEvent hop;
  hop.reply.addr = addr("198.18.1.2");
  lookup.hop(hop, Direction::none);
  const output::AddressInfo* info = lookup.find(addr("198.18.1.2"));
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->asn, 64521u);
  EXPECT_EQ(info->as_name, "TSV-HOP-1");
  EXPECT_EQ(info->name, "");
  // Once per address.
  lookup.hop(hop, Direction::none);
  core::TraceResult trace;
  trace.hops.push_back(core::Hop{});
  trace.hops[0].replies.push_back(hop.reply);
  trace.hops[0].replies.push_back(hop.reply);
  trace.hops[0].replies.back().addr = addr("198.20.0.7");  // not routed
  lookup.trace(trace, Direction::none);
  EXPECT_EQ(lookup.find(addr("198.20.0.7")), nullptr);
  EXPECT_EQ(lookup.counts().asn_lookups, 2u);
  EXPECT_EQ(lookup.counts().asn_failures, 1u);
  EXPECT_EQ(lookup.counts().name_lookups, 0u);
}

TEST(AddressLookup, TheCacheIsBounded) {
  LookupOptions options;
  options.names = false;
  options.cache_size = 2;
  std::string error;
  AddressLookup lookup(options, AsnDb::open(data_dir + "/asn.tsv", error), nullptr);
  for (const char* a : {"198.18.1.2", "198.18.2.2", "198.18.3.2"}) lookup.see(addr(a));
  EXPECT_EQ(lookup.size(), 2u);
  EXPECT_EQ(lookup.find(addr("198.18.1.2")), nullptr);  // the oldest, forgotten
  EXPECT_NE(lookup.find(addr("198.18.3.2")), nullptr);
  lookup.see(addr("198.18.1.2"));  // asked again
  EXPECT_EQ(lookup.find(addr("198.18.1.2"))->asn, 64521u);
  EXPECT_EQ(lookup.counts().asn_lookups, 4u);
}

TEST(AddressLookup, NothingWhenNothingIsAsked) {
  LookupOptions options;
  options.names = false;
  AddressLookup lookup(options, nullptr, nullptr);
  EXPECT_EQ(lookup.book(), nullptr);
  lookup.see(addr("198.18.1.2"));
  EXPECT_EQ(lookup.size(), 0u);
  EXPECT_EQ(lookup.counts().asn_lookups + lookup.counts().name_lookups, 0u);
}

TEST(LookupOptions, CommandLine) {
  const auto parse = [](std::vector<std::string> args) {
    CLI::App app;
    LookupOptions options;
    add_lookup_options(app, options);
    std::reverse(args.begin(), args.end());
    app.parse(args);
    return options;
  };
  EXPECT_TRUE(parse({}).names);
  EXPECT_FALSE(parse({}).asn_dns);
  EXPECT_FALSE(parse({}).asn_db);
  EXPECT_FALSE(parse({"-n"}).names);
  EXPECT_FALSE(parse({"--no-dns"}).names);
  EXPECT_TRUE(parse({"--asn-dns"}).asn_dns);
  EXPECT_EQ(parse({"--asn-db", data_dir + "/asn.tsv"}).asn_db, data_dir + "/asn.tsv");
  EXPECT_THROW(parse({"--asn-db", data_dir + "/no-such-file"}), CLI::ValidationError);
}

}  // namespace
}  // namespace nfqtrace::cli
