// The rule keeper: it removes the rules the moment the tracing process ends,
// and while armed it reports packets that passed untraced because the queue
// was full. Runs in the namespace netns_main.cpp made, with the xtables back
// end (what every kernel here takes).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nfqtrace/sys/nfqueue.hpp"
#include "nfqtrace/sys/rule_keeper.hpp"
#include "nfqtrace/sys/rules.hpp"
#include "test_support.hpp"

namespace nfqtrace::sys {
namespace {

using namespace std::chrono_literals;
using testing::ScopedEnv;

// This process's stderr goes to a file while it lives, and so does the
// keeper's, which inherits it when forked.
class StderrCapture {
 public:
  StderrCapture() : path_("/tmp/nfqtrace-keeper-test-" + std::to_string(::getpid()) + ".err") {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture() {
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::unlink(path_.c_str());
  }
  std::string text() const {
    std::ifstream file(path_);
    std::stringstream all;
    all << file.rdbuf();
    return all.str();
  }
  std::vector<std::string> lines_with(const std::string& needle) const {
    std::vector<std::string> found;
    std::istringstream in(text());
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) != std::string::npos) found.push_back(line);
    }
    return found;
  }

 private:
  std::string path_;
  int saved_ = -1;
};

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::size_t our_rule_lines(std::uint16_t queue_id) {
  const std::string out = testing::capture("iptables-save -t mangle 2>/dev/null");
  std::size_t count = 0;
  const std::string needle = "NFQTRACE-Q" + std::to_string(queue_id) + "-";
  for (std::size_t at = 0; (at = out.find(needle, at)) != std::string::npos; ++at) ++count;
  return count;
}

class RuleKeeperTest : public testing::XtablesRulesTest {
 protected:
  // xtables rules for the connections to `port` on loopback, given to the
  // keeper (as the tracer does: it removes them, not the Rules object).
  void install(std::uint16_t queue_id, std::uint16_t port) {
    RuleSpec spec;
    spec.queue_id = use_queue(queue_id);
    spec.nflog_group = queue_id;
    spec.dports = {port};
    spec.host = wire::Address::parse("127.0.0.1");
    auto rules = Rules::install(spec);
    ASSERT_TRUE(rules) << rules.error().message();
    rules->release();
  }
};

// The keeper waits for its next look at the counters in poll(); the end of
// the tracing process (end of file on the pipe) must not wait for it.
TEST_F(RuleKeeperTest, RemovesTheRulesAtOnceWhenTheTracerEnds) {
  ScopedEnv interval(RuleKeeper::kReportSecondsVariable, "60");
  auto keeper = RuleKeeper::start(31);
  ASSERT_TRUE(keeper) << keeper.error().message();
  install(31, 81);
  ASSERT_GT(our_rule_lines(31), 0u);
  ASSERT_TRUE(keeper->arm());
  std::this_thread::sleep_for(300ms);  // the keeper is in poll() now
  const auto start = std::chrono::steady_clock::now();
  auto finished = keeper->finish();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(finished) << finished.error().message();
  EXPECT_LT(took, 10s) << "the keeper waited for its report interval";
  EXPECT_EQ(our_rule_lines(31), 0u);
}

// A queue of one packet that nobody reads: the first SYN stays in it, the
// others pass untraced (fail-open) and are refused by the port nobody
// listens to.
TEST_F(RuleKeeperTest, ReportsPacketsThatPassUntracedWhileArmed) {
  ScopedEnv interval(RuleKeeper::kReportSecondsVariable, "0.2");
  StderrCapture err;
  auto keeper = RuleKeeper::start(32);
  ASSERT_TRUE(keeper) << keeper.error().message();
  QueueOptions options;
  options.queue_id = 32;
  options.max_len = 1;
  options.fail_open = true;
  auto queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();
  install(32, 82);
  ASSERT_TRUE(keeper->arm());

  constexpr int kConnections = 20;
  std::vector<int> sockets;
  for (int i = 0; i < kConnections; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(82);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    sockets.push_back(fd);
  }
  // One line per interval in which more passed: together they add up.
  const std::string live = "nfqtrace: queue full: ";
  struct Report {
    unsigned long long delta = 0, total = 0;
    double seconds = 0;
  };
  const auto reports = [&] {
    std::vector<Report> found;
    for (const std::string& line : err.lines_with(live)) {
      Report r;
      EXPECT_EQ(std::sscanf(line.c_str(),
                            "nfqtrace: queue full: %llu packets passed untraced in the last %lf s "
                            "(%llu in all)",
                            &r.delta, &r.seconds, &r.total),
                3)
          << line;
      found.push_back(r);
    }
    return found;
  };
  const bool reported = wait_for(
      [&] {
        const auto r = reports();
        return !r.empty() && r.back().total >= kConnections - 1;
      },
      5s);
  for (int fd : sockets) ::close(fd);
  ASSERT_TRUE(reported) << err.text();
  std::this_thread::sleep_for(300ms);  // a report of a last SYN resent

  const auto made = reports();
  unsigned long long sum = 0;
  for (const Report& r : made) {
    EXPECT_GT(r.delta, 0u);
    EXPECT_GT(r.seconds, 0.0);
    EXPECT_LT(r.seconds, 3.0);
    sum += r.delta;
    EXPECT_EQ(r.total, sum) << err.text();
  }
  const unsigned long long total = made.back().total;
  // The held SYN counts once, as taken; resent, it passes as well.
  EXPECT_LE(total, static_cast<unsigned long long>(kConnections)) << err.text();

  // Nothing more passes: no more reports, however many intervals go by.
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(err.lines_with(live).size(), made.size()) << err.text();

  ASSERT_TRUE(keeper->finish());
  const auto at_exit = err.lines_with("packets of the traced connections passed untraced");
  ASSERT_EQ(at_exit.size(), 1u) << err.text();
  EXPECT_EQ(at_exit.front(),
            "nfqtrace: " + std::to_string(total) +
                " packets of the traced connections passed untraced (the queue was full)");
  EXPECT_EQ(our_rule_lines(32), 0u);
}

TEST_F(RuleKeeperTest, NothingReportedWithoutOverload) {
  ScopedEnv interval(RuleKeeper::kReportSecondsVariable, "0.1");
  StderrCapture err;
  auto keeper = RuleKeeper::start(33);
  ASSERT_TRUE(keeper) << keeper.error().message();
  QueueOptions options;
  options.queue_id = 33;
  auto queue = NfQueue::open(options);
  ASSERT_TRUE(queue) << queue.error().message();
  install(33, 83);
  ASSERT_TRUE(keeper->arm());
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(keeper->finish());
  EXPECT_EQ(err.text(), "");
}

TEST_F(RuleKeeperTest, ABadIntervalIsNamedAndTheDefaultUsed) {
  for (const char* bad : {"0", "-1", "5s", "nan", "1e9"}) {
    ScopedEnv interval(RuleKeeper::kReportSecondsVariable, bad);
    StderrCapture err;
    auto keeper = RuleKeeper::start(34);
    ASSERT_TRUE(keeper) << keeper.error().message();
    ASSERT_TRUE(keeper->finish());
    EXPECT_EQ(err.text(), std::string("nfqtrace: ") + RuleKeeper::kReportSecondsVariable +
                              " must be seconds from 0.1 to 3600; reporting every 5 s\n")
        << bad;
  }
}

}  // namespace
}  // namespace nfqtrace::sys
