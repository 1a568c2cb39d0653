#include "nfqtrace/sys/rule_keeper.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "nfqtrace/sys/rules.hpp"

namespace nfqtrace::sys {
namespace {

constexpr char arm_byte = 'A';

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
  if (armed) {
    if (auto s = Rules::remove_leftovers(queue_id); !s)
      std::fprintf(stderr, "nfqtrace-keeper: removing rules: %s\n", s.error().message().c_str());
  }
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
