#include "nfqtrace/sys/rule_keeper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "netfilter_socket.hpp"
#include "nfqtrace/sys/rules.hpp"

namespace nfqtrace::sys {
namespace {

constexpr char arm_byte = 'A';
constexpr double kMinReportSeconds = 0.1, kMaxReportSeconds = 3600;

using Clock = std::chrono::steady_clock;

// The report interval: RuleKeeper::kReportSeconds, or the environment's.
double report_seconds() {
  const char* text = std::getenv(RuleKeeper::kReportSecondsVariable);
  if (text == nullptr || *text == '\0') return RuleKeeper::kReportSeconds;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  // NaN fails both comparisons.
  if (end != text && *end == '\0' && seconds >= kMinReportSeconds && seconds <= kMaxReportSeconds)
    return seconds;
  std::fprintf(stderr, "nfqtrace: %s must be seconds from %g to %g; reporting every %g s\n",
               RuleKeeper::kReportSecondsVariable, kMinReportSeconds, kMaxReportSeconds,
               RuleKeeper::kReportSeconds);
  return RuleKeeper::kReportSeconds;
}

// Fail-open lets packets pass while the queue is full. The queue numbers
// every packet it takes (id_sequence, in /proc while the queue is bound);
// the rule counters count every packet sent its way: the difference passed
// untraced. Each count is a lower bound: a packet that reaches the rule
// between the two reads counts as taken, and in mangle mode the queue takes
// a GSO packet as several segments (one rule match, several ids). The
// lines report the highest count seen.
class UntracedWatch {
 public:
  explicit UntracedWatch(std::uint16_t queue_id) : queue_id_(queue_id), counter_(queue_id) {}

  // Every interval while armed: one line when more packets passed untraced
  // than the last line said.
  void check(Clock::time_point now) {
    const std::vector<std::uint64_t> row = queue_row();
    if (row.size() < 8) return;  // the queue is not bound: nothing to compare
    const QueueState state{row[7], row[2]};
    // Idle: nothing queued since the last look, when none was waiting. The
    // queue was never full in between, so nothing passed untraced; no
    // command to run.
    if (last_ && state.id_sequence == last_->id_sequence && last_->waiting == 0) {
      last_time_ = now;
      return;
    }
    const auto untraced = count();
    if (!untraced) return;  // counters unreadable: next time
    // Only more than the last line said: a lower count (see above) is no news.
    if (*untraced > reported_) {
      const double seconds =
          std::round(std::chrono::duration<double>(now - last_time_).count() * 10) / 10;
      std::fprintf(stderr,
                   "nfqtrace: queue full: %llu packets passed untraced in the last %g s "
                   "(%llu in all)\n",
                   static_cast<unsigned long long>(*untraced - reported_), seconds,
                   static_cast<unsigned long long>(*untraced));
      reported_ = *untraced;
    }
    last_ = state;
    last_time_ = now;
  }

  // At the end, before the rules go: the total, never less than the live
  // lines said (every count is a lower bound of a number that only grows).
  void final_report() {
    const std::uint64_t untraced = std::max(count().value_or(0), reported_);
    if (untraced == 0) return;
    std::fprintf(stderr,
                 "nfqtrace: %llu packets of the traced connections passed untraced "
                 "(the queue was full)\n",
                 static_cast<unsigned long long>(untraced));
  }

  void start(Clock::time_point now) { last_time_ = now; }

 private:
  struct QueueState {
    std::uint64_t id_sequence = 0;  // packets queued so far
    std::uint64_t waiting = 0;      // packets in the queue now
  };

  std::vector<std::uint64_t> queue_row() const {
    return detail::proc_netfilter_row("/proc/net/netfilter/nfnetlink_queue", queue_id_);
  }

  // Packets that passed untraced so far; nullopt when that cannot be known.
  std::optional<std::uint64_t> count() {
    // The counters first, the queue's numbering second: a packet that
    // arrives in between then counts as taken, never as passed untraced.
    auto matched = counter_.read();
    const std::vector<std::uint64_t> row = queue_row();
    if (!matched) {
      if (!counter_error_shown_) {
        std::fprintf(stderr, "nfqtrace-keeper: reading the queue rule counters: %s\n",
                     matched.error().message().c_str());
        counter_error_shown_ = true;
      }
      return std::nullopt;
    }
    if (row.size() < 8) return std::nullopt;  // the queue is gone (a crash)
    const std::uint64_t taken = row[7];
    return *matched > taken ? *matched - taken : 0;
  }

  std::uint16_t queue_id_;
  QueueRuleCounter counter_;
  std::optional<QueueState> last_;  // at the last check that counted
  Clock::time_point last_time_{};   // of the last check that counted
  std::uint64_t reported_ = 0;      // untraced packets reported so far
  bool counter_error_shown_ = false;
};

// The keeper's whole life: wait for the tracing process to go, then clean up.
[[noreturn]] void keep(int pipe_fd, std::uint16_t queue_id) {
  // Ctrl-C and a hang-up reach the whole process group: they are for the
  // tracing process, which ends properly; the keeper follows the pipe.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  prctl(PR_SET_NAME, "nfqtrace-keeper", 0, 0, 0);
  // Holding nothing but the pipe: above all not a copy of a queue socket,
  // which would keep the queue bound, and packets waiting, after a crash.
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
  }
  if (dup2(pipe_fd, 3) < 0) _exit(1);
  close_range(4, ~0U, 0);

  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(report_seconds()));
  UntracedWatch watch(queue_id);
  bool armed = false;
  Clock::time_point next_check{};
  char byte = 0;
  for (;;) {
    // Unarmed: no rules of ours to count, so nothing to do but wait.
    int timeout_ms = -1;
    if (armed) {
      const Clock::time_point now = Clock::now();
      if (now >= next_check) {
        watch.check(now);
        next_check += interval;
        // Behind (a slow command, a stopped process): no catching up.
        if (const auto after = Clock::now(); next_check <= after) next_check = after + interval;
        continue;
      }
      timeout_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(next_check - now).count() + 1);
    }
    // Readable at once on the arm byte and on end of file: the rules go the
    // moment the tracing process does, not at the next check.
    pollfd pipe_end{3, POLLIN, 0};
    const int ready = poll(&pipe_end, 1, timeout_ms);
    if (ready == 0) continue;  // time for a check
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const ssize_t n = read(3, &byte, 1);
    if (n == 1) {
      if (!armed && byte == arm_byte) {
        armed = true;
        const Clock::time_point now = Clock::now();
        watch.start(now);
        next_check = now + interval;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // end of file: the tracing process is gone, or done
  }
  if (!armed) _exit(0);
  watch.final_report();
  if (auto s = Rules::remove_leftovers(queue_id); !s)
    std::fprintf(stderr, "nfqtrace-keeper: removing rules: %s\n", s.error().message().c_str());
  _exit(0);
}

}  // namespace

Result<RuleKeeper> RuleKeeper::start(std::uint16_t queue_id) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Error::from_errno("pipe for the rule keeper");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Error::from_errno("fork the rule keeper");
  if (pid == 0) {
    write_end.reset();
    keep(read_end.get(), queue_id);
  }
  return RuleKeeper(pid, std::move(write_end));
}

RuleKeeper::RuleKeeper(RuleKeeper&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), pipe_(std::move(o.pipe_)) {}

RuleKeeper::~RuleKeeper() { (void)finish(); }

Status RuleKeeper::arm() {
  if (write(pipe_.get(), &arm_byte, 1) != 1) return Error::from_errno("arm the rule keeper");
  return Ok{};
}

Status RuleKeeper::finish() {
  if (pid_ < 0) return Ok{};
  pipe_.reset();  // end of file for the keeper: it removes the rules and exits
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) {
      pid_ = -1;
      return Error::from_errno("wait for the rule keeper");
    }
  }
  pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return Error{"the rule keeper failed"};
  return Ok{};
}

}  // namespace nfqtrace::sys
