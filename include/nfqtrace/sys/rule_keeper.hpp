// The rule keeper: a small process, forked before anything else is opened,
// that keeps the privileges to remove our rules when the tracing process has
// given its own up, and removes them the moment that process ends, however
// it ends (exit, crash, SIGKILL, the OOM killer): it watches a pipe whose
// other end only the tracing process holds.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/fd.hpp"

namespace nfqtrace::sys {

class RuleKeeper {
 public:
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
