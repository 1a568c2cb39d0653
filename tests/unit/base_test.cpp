// The result type every layer returns, and the queue that hands decisions
// out in order.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "nfqtrace/base/expected.hpp"
#include "nfqtrace/base/output_queue.hpp"

using namespace nfqtrace;

namespace {

struct Problem {
  int code = 0;
};

Expected<int, Problem> half(int n) {
  if (n % 2 != 0) return Problem{n};
  return n / 2;
}

}  // namespace

TEST(Expected, HoldsTheValueOrTheError) {
  const auto four = half(8);
  ASSERT_TRUE(four);
  EXPECT_EQ(*four, 4);
  EXPECT_EQ(four.value_or(-1), 4);
  const auto odd = half(7);
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code, 7);
  EXPECT_EQ(odd.value_or(-1), -1);
}

TEST(Expected, WhereBothCouldBeMadeFromTheSameTypeTheErrorIsSaidExplicitly) {
  const Expected<std::string, std::string> value = std::string("text");
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, "text");
  const Expected<std::string, std::string> error = unexpected(std::string("why"));
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error(), "why");
}

TEST(Expected, MovesItsValueOut) {
  Expected<std::string, int> text = std::string(100, 'x');
  const std::string taken = *std::move(text);
  EXPECT_EQ(taken.size(), 100u);
}

TEST(OutputQueue, HandsItemsOutOldestFirstIncludingThoseAddedWhileDraining) {
  OutputQueue<std::variant<int, std::string>> queue;
  queue.push(1);
  queue.push(std::string("two"));
  auto first = queue.poll();
  ASSERT_TRUE(first);
  EXPECT_EQ(std::get<int>(*first), 1);
  queue.push(3);  // an answer fed back while the caller drains
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(std::get<std::string>(*queue.poll()), "two");
  EXPECT_EQ(std::get<int>(*queue.poll()), 3);
  EXPECT_FALSE(queue.poll());
  EXPECT_TRUE(queue.empty());
  queue.push(4);  // reused once drained
  EXPECT_EQ(std::get<int>(*queue.poll()), 4);
}
