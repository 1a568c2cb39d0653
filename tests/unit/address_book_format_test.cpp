// What the formats write of an address when given an output::AddressBook:
// "name", "asn", "as_name" on hop objects and on each reply of a trace,
// "name (addr) [AS…]" in the text, and nothing new without one.
#include <gtest/gtest.h>

#include "nfqtrace/output/address_book.hpp"
#include "nfqtrace/output/format.hpp"
#include "nfqtrace/output/parse.hpp"
#include "format_samples.hpp"
#include "packets.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

namespace {

using formats::FakeBook;

core::TraceResult trace() {
  core::TraceResult t;
  t.flow = core::FlowKey{testpkt::addr("198.18.1.1"), testpkt::addr("198.18.4.2"), 41234, 443};
  t.round = 1;
  t.reached = true;
  t.reason = core::StopReason::reached;
  core::Reply r1;
  r1.addr = testpkt::addr("198.18.1.2");
  r1.rtt = 1ms;
  core::Reply r2 = r1;
  r2.addr = testpkt::addr("198.18.2.2");
  core::Reply r3 = r1;
  r3.addr = testpkt::addr("198.18.3.2");
  t.hops = {core::Hop{1, 1, {r1}, {}}, core::Hop{2, 1, {r2}, {}}, core::Hop{3, 1, {r3}, {}}};
  return t;
}

FakeBook book() {
  FakeBook b;
  b.known[testpkt::addr("198.18.1.2")] = {"r1.example.net", 64501u, "EXAMPLE-ONE"};
  b.known[testpkt::addr("198.18.2.2")] = {"r2.example.net", std::nullopt, ""};  // name only
  b.known[testpkt::addr("198.18.3.2")] = {"", 64503u, ""};                      // AS only, no AS name
  return b;
}

}  // namespace

TEST(AddressBookFormat, TraceRepliesCarryWhatIsKnown) {
  const FakeBook b = book();
  const auto j = output::trace_json(trace(), &b);
  const auto& r1 = j["hops"][0]["replies"][0];
  EXPECT_EQ(r1["name"], "r1.example.net");
  EXPECT_EQ(r1["asn"], 64501);
  EXPECT_EQ(r1["as_name"], "EXAMPLE-ONE");
  const auto& r2 = j["hops"][1]["replies"][0];
  EXPECT_EQ(r2["name"], "r2.example.net");
  EXPECT_FALSE(r2.contains("asn"));
  EXPECT_FALSE(r2.contains("as_name"));
  const auto& r3 = j["hops"][2]["replies"][0];
  EXPECT_FALSE(r3.contains("name"));
  EXPECT_EQ(r3["asn"], 64503);
  EXPECT_FALSE(r3.contains("as_name"));
}

TEST(AddressBookFormat, HopObjectsCarryWhatIsKnown) {
  const FakeBook b = book();
  const core::TraceResult t = trace();
  const auto j = output::hop_json(core::HopEvent{t.flow, 1, 1, t.hops[0].replies[0]}, &b);
  EXPECT_EQ(j["name"], "r1.example.net");
  EXPECT_EQ(j["asn"], 64501);
  EXPECT_EQ(j["as_name"], "EXAMPLE-ONE");
  // Unknown to the book: nothing.
  core::Reply other = t.hops[0].replies[0];
  other.addr = testpkt::addr("198.18.9.2");
  const auto k = output::hop_json(core::HopEvent{t.flow, 1, 1, other}, &b);
  EXPECT_FALSE(k.contains("name") || k.contains("asn") || k.contains("as_name"));
}

TEST(AddressBookFormat, WithoutABookNothingChanges) {
  const FakeBook b;
  EXPECT_EQ(output::trace_json(trace(), &b), output::trace_json(trace()));
  EXPECT_EQ(output::trace_json(trace(), nullptr), output::trace_json(trace()));
  EXPECT_EQ(output::trace_text(trace(), &b), output::trace_text(trace()));
  const auto j = output::trace_json(trace());
  EXPECT_FALSE(j["hops"][0]["replies"][0].contains("name"));
}

TEST(AddressBookFormat, TextShowsNamesAndAs) {
  const FakeBook b = book();
  const std::string text = output::trace_text(trace(), &b);
  EXPECT_NE(text.find("  1  r1.example.net (198.18.1.2) [AS64501]  1.000 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("  2  r2.example.net (198.18.2.2)  1.000 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("  3  198.18.3.2 [AS64503]  1.000 ms"), std::string::npos) << text;
}

TEST(AddressBookFormat, TheJsonStillParses) {
  // Readers of nfqtrace's JSON (nfqtrace-client's) take the new fields in stride.
  const FakeBook b = book();
  const auto back = output::trace_from_json(output::trace_json(trace(), &b));
  ASSERT_TRUE(back);
  EXPECT_EQ(output::trace_json(*back), output::trace_json(trace()));
}
