// The rule keeper: a small process, forked before anything else is opened,
// that keeps the privileges to remove our rules when the tracing process has
// given its own up, and removes them the moment that process ends, however
// it ends (exit, crash, SIGKILL, the OOM killer): it watches a pipe whose
// other end only the tracing process holds.
//
// While armed it also watches for overload: packets the queue had no room
// for pass untraced (fail-open), and every kReportSeconds the keeper prints
// how many did since its last report, when any did:
//   nfqtrace: queue full: 1234 packets passed untraced in the last 5 s (5678 in all)
// and the total once more when it removes the rules.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"

namespace nfqtrace::sys {

class RuleKeeper {
 public:
  // How often the armed keeper looks for packets that passed untraced. The
  // environment variable (seconds, 0.1 to 3600; read by the keeper alone)
  // overrides it, for tests.
  static constexpr double kReportSeconds = 5.0;
  static constexpr const char* kReportSecondsVariable = "NFQTRACE_OVERLOAD_REPORT_SECONDS";

  static Result<RuleKeeper> start(std::uint16_t queue_id);
  RuleKeeper(RuleKeeper&& o) noexcept;
  RuleKeeper& operator=(RuleKeeper&&) = delete;
  ~RuleKeeper();  // finish()

  // Our rules are in place: remove them when we end. Before this the keeper
  // removes nothing (an instance refused at start must not touch the rules
  // of the instance that holds the queue).
  Status arm();
  // Removes the rules now, and waits until they are gone. Before that the
  // keeper reports packets that passed untraced while the queue was full.
  Status finish();
  pid_t pid() const { return pid_; }

 private:
  RuleKeeper(pid_t pid, UniqueFd pipe) : pid_(pid), pipe_(std::move(pipe)) {}
  pid_t pid_ = -1;
  UniqueFd pipe_;
};

}  // namespace nfqtrace::sys
