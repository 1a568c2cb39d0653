#include <gtest/gtest.h>

#include "nfqtrace/output/meta.hpp"

using namespace std::chrono_literals;
using namespace nfqtrace;

TEST(Meta, DescribesTheRun) {
  output::Meta m;
  m.tool = "nfqtrace";
  m.version = "0.9.0";
  m.host = "vm";
  m.run_id = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f";
  m.start = 1'795'773'600s + 123456us;
  m.options = {{"mode", "dup"}, {"max_ttl", 30}};
  const auto expected = nlohmann::json::parse(R"({"type":"meta","tool":"nfqtrace","version":"0.9.0",
    "host":"vm","run_id":"0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f","start":"2026-11-27T10:00:00.123456Z",
    "options":{"mode":"dup","max_ttl":30}})");
  EXPECT_EQ(output::meta_json(m), expected);
}

TEST(Meta, OptionsAreAnObjectEvenWhenNoneAreGiven) {
  output::Meta m;
  m.options = nullptr;
  EXPECT_TRUE(output::meta_json(m)["options"].is_object());
  EXPECT_TRUE(output::meta_json(output::Meta{})["options"].is_object());
}
