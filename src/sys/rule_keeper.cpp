#include "nfqtrace/sys/rule_keeper.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <vector>
#include <utility>

#include "netfilter_socket.hpp"
#include "nfqtrace/sys/rules.hpp"

namespace nfqtrace::sys {
namespace {

constexpr char arm_byte = 'A';
// Fail-open lets packets pass while the queue is full. The queue numbers
// every packet it takes (id_sequence, in /proc while the queue is bound);
// the rule counters count every packet sent its way: the difference passed
// untraced.
void report_untraced(std::uint16_t queue_id) {
  // The counters first, the queue's numbering second: a packet that arrives
  // in between then counts as taken, never as passed untraced.
  auto matched = Rules::queued_packets(queue_id);
  const std::vector<std::uint64_t> row =
      detail::proc_netfilter_row("/proc/net/netfilter/nfnetlink_queue", queue_id);
  if (row.size() < 8) return;  // the queue is gone (a crash): nothing to compare
  const std::uint64_t taken = row[7];
  if (!matched || *matched <= taken) return;
  std::fprintf(stderr,
               "nfqtrace: %llu packets of the traced connections passed untraced "
               "(the queue was full)\n",
               static_cast<unsigned long long>(*matched - taken));
}

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

  bool armed = false;
  char byte = 0;
  for (;;) {
    const ssize_t n = read(3, &byte, 1);
    if (n == 1) {
      armed = armed || byte == arm_byte;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // end of file: the tracing process is gone, or done
  }
  if (!armed) _exit(0);
  report_untraced(queue_id);
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
