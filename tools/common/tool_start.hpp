// The start every tool's main() shares, once its options are parsed, in this
// order: where results go, the capabilities the programs it runs (iptables,
// nft) need, and the event loop. The loop blocks signals from then on, so an
// interrupt during the rest of the set-up still ends in a clean shutdown.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "console.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/privileges.hpp"

namespace nfqtrace::cli {

struct ToolStart {
  ResultWriter writer;
  sys::EventLoop loop;
};

// The writer and the loop, or the status to exit with after a one-line
// error (2 for a --log-file that cannot be opened, 1 for the rest).
inline std::variant<ToolStart, int> start_tool(const std::optional<std::string>& log_file,
                                               const ErrorReporter& fail) {
  std::string error;
  auto writer = ResultWriter::open(log_file, error);
  if (!writer) return fail(error, 2);
  if (auto s = sys::pass_capabilities_to_children(); !s) return fail(s.error());
  auto loop = sys::EventLoop::create();
  if (!loop) return fail(loop.error());
  return ToolStart{std::move(*writer), std::move(*loop)};
}

}  // namespace nfqtrace::cli
