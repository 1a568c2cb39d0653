// What timestamp a dup-mode probe may carry (core::SenderClock).
#include <gtest/gtest.h>

#include "nfqtrace/core/sender_clock.hpp"

using namespace std::chrono_literals;
using nfqtrace::core::SenderClock;

TEST(SenderClock, NothingNewerThanTheCopyLeavesTheCopysOwn) {
  SenderClock c;
  EXPECT_FALSE(c.newer_than(7));
  c.on_own(100, 0ms);
  EXPECT_FALSE(c.newer_than(100));
  EXPECT_FALSE(c.newer_than(101));  // a copy newer than all we saw
  EXPECT_EQ(c.newer_than(99), 100u);
}

TEST(SenderClock, ThePeersEchoIsTakenAsFarAsTheSendersClockCanHaveMoved) {
  SenderClock c;
  c.on_own(100, 0ms);
  c.on_echo(106, 5ms);  // 5 ms passed: up to 106 (a tick may have just passed)
  EXPECT_EQ(c.newer_than(100), 106u);
  c.on_echo(120, 6ms);  // 20 ticks in 6 ms: not a clock RFC 7323 allows
  EXPECT_EQ(c.newer_than(100), 106u);
  c.on_echo(103, 7ms);  // older than known: nothing learnt
  EXPECT_EQ(c.newer_than(100), 106u);
}

TEST(SenderClock, AnEchoBeforeAnyOwnPacketIsNotBelieved) {
  SenderClock c;
  c.on_echo(5000, 1s);
  EXPECT_FALSE(c.newer_than(1));
}

TEST(SenderClock, ComparesAcrossTheWrapOfTheClock) {
  SenderClock c;
  c.on_own(0xfffffffe, 0ms);
  c.on_echo(1, 10ms);  // 3 ticks on, past the wrap
  EXPECT_EQ(c.newer_than(0xfffffffd), 1u);
  EXPECT_FALSE(c.newer_than(2));
  c.on_own(0xfffffff0, 11ms);  // an old packet (a late copy) moves nothing back
  EXPECT_EQ(c.newer_than(0xfffffffe), 1u);
}

TEST(SenderClock, AnEchoIsBoundedByThePacketReadSoonestAfterItsStamp) {
  SenderClock c;
  c.on_own(100, 10ms);      // read at once: the sender's clock is ours + 90
  c.on_own(101, 14500us);   // stamped at 11 ms, read 3.5 ms late
  c.on_echo(104, 14600us);  // what its clock reads at 14.6 ms: believed
  EXPECT_EQ(c.newer_than(101), 104u);
  c.on_echo(107, 15ms);  // its clock reads 105: more than a tick ahead, not
  EXPECT_EQ(c.newer_than(101), 104u);
}
