// nfqtrace: parasitic traceroute of live TCP connections.
#include <fmt/format.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "nfqtrace/output/format.hpp"
#include "nfqtrace/runtime/tracer.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/privileges.hpp"
#include "../common/console.hpp"
#include "../common/summary.hpp"
#include "options.hpp"

namespace {

using namespace nfqtrace;

// Each result as it happens, in the chosen format.
class ConsoleSink final : public runtime::ResultSink {
 public:
  ConsoleSink(cli::Format format, cli::ResultWriter& out) : format_(format), out_(out) {}

  void on_hop(const core::HopEvent& hop) override {
    if (format_ == cli::Format::json) out_.write(output::hop_json(hop).dump() + "\n");
  }
  void on_trace(const core::TraceResult& trace) override {
    out_.write(format_ == cli::Format::json ? output::trace_json(trace).dump() + "\n"
                                            : output::trace_text(trace) + "\n");
  }

 private:
  cli::Format format_;
  cli::ResultWriter& out_;
};

using cli::explain;

}  // namespace

int main(int argc, char** argv) {
  auto parsed = cli::parse_options(argc, argv);
  if (auto* exit = std::get_if<cli::Exit>(&parsed)) {
    std::fputs(exit->message.c_str(), exit->status == 0 ? stdout : stderr);
    return exit->status;
  }
  cli::Options& options = std::get<cli::Options>(parsed);

  if (options.tracer.rules && options.tracer.rules->out_interface &&
      if_nametoindex(options.tracer.rules->out_interface->c_str()) == 0) {
    fmt::print(stderr, "nfqtrace: --interface: no interface named '{}'\n",
               *options.tracer.rules->out_interface);
    return 2;
  }

  std::string error;
  auto writer = cli::ResultWriter::open(options.log_file, error);
  if (!writer) {
    fmt::print(stderr, "nfqtrace: {}\n", error);
    return 2;
  }

  if (auto s = sys::pass_capabilities_to_children(); !s) {
    fmt::print(stderr, "nfqtrace: {}\n", explain(s.error()));
    return 1;
  }
  // Signals are blocked from here on and arrive as events, so an interrupt
  // during set-up still ends in a clean shutdown.
  auto loop = sys::EventLoop::create();
  if (!loop) {
    fmt::print(stderr, "nfqtrace: {}\n", explain(loop.error()));
    return 1;
  }
  ConsoleSink sink(options.format, *writer);
  auto tracer = runtime::Tracer::create(options.tracer, sink);
  if (!tracer) {
    fmt::print(stderr, "nfqtrace: {}\n", explain(tracer.error()));
    return 1;
  }
  if (auto s = (*tracer)->attach(*loop); !s) {
    fmt::print(stderr, "nfqtrace: {}\n", explain(s.error()));
    return 1;
  }
  if (auto s = sys::drop_privileges(options.user); !s) {
    fmt::print(stderr, "nfqtrace: {}\n", explain(s.error()));
    return 1;
  }
  loop->on_signal([&](int) { loop->stop(); });
  fmt::print(stderr, "nfqtrace: tracing (queue {}, {} mode); Ctrl-C to stop\n",
             options.tracer.queue.queue_id, core::to_string(options.tracer.trace.mode));
  if (const auto stale = (*tracer)->counters().stale_marks_cleared; stale > 0)
    fmt::print(stderr, "nfqtrace: cleared the skip mark an earlier run left on {} connections\n",
               stale);

  int status = 0;
  if (!(*tracer)->done()) {
    if (auto s = loop->run(); !s) {
      fmt::print(stderr, "nfqtrace: {}\n", explain(s.error()));
      status = 1;
    }
  }
  if (const auto& fatal = (*tracer)->fatal()) {
    fmt::print(stderr, "nfqtrace: {}\n", explain(*fatal));
    status = 1;
  }
  if (auto s = (*tracer)->shutdown(); !s) {
    fmt::print(stderr, "nfqtrace: removing rules: {}\n", explain(s.error()));
    status = 1;
  }
  std::fputs(cli::run_summary("nfqtrace", **tracer).c_str(), stderr);
  return status;
}
