// nfqtrace: parasitic traceroute of live TCP connections.
#include <fmt/format.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "nfqtrace/runtime/tracer.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/privileges.hpp"
#include "../common/address_lookup.hpp"
#include "../common/console.hpp"
#include "../common/formats.hpp"
#include "../common/live_view.hpp"
#include "../common/metrics_server.hpp"
#include "../common/summary.hpp"
#include "../common/tool_start.hpp"
#include "options.hpp"

namespace {

using namespace nfqtrace;

// Each result as it happens, to every format and observer.
class ResultsSink final : public runtime::ResultSink {
 public:
  explicit ResultsSink(cli::Results& results) : results_(results) {}
  void on_hop(const core::HopEvent& hop) override { results_.hop(hop, cli::Direction::none); }
  void on_trace(const core::TraceResult& trace) override {
    results_.trace(trace, cli::Direction::none);
  }
  void on_path_change(const core::PathChange& change) override { results_.path_change(change); }

 private:
  cli::Results& results_;
};

}  // namespace

int main(int argc, char** argv) {
  auto parsed = cli::parse_options(argc, argv);
  if (auto* exit = std::get_if<cli::Exit>(&parsed)) return cli::print_exit(*exit);
  cli::Options& options = std::get<cli::Options>(parsed);
  const cli::ErrorReporter fail("nfqtrace");

  if (options.tracer.rules && options.tracer.rules->out_interface &&
      if_nametoindex(options.tracer.rules->out_interface->c_str()) == 0) {
    return fail(fmt::format("--interface: no interface named '{}'",
                            *options.tracer.rules->out_interface), 2);
  }

  auto started = cli::start_tool(options.results.log_file, fail);
  if (auto* status = std::get_if<int>(&started)) return *status;
  // Named, not a structured binding: clang 14 cannot capture those in lambdas.
  cli::ToolStart& tool = std::get<cli::ToolStart>(started);
  cli::ResultWriter& writer = tool.writer;
  sys::EventLoop& loop = tool.loop;
  cli::Results results;
  auto lookup = cli::AddressLookup::create(loop, options.lookup);
  if (!lookup) return fail(lookup.error());
  // First among the consumers: a name known by then goes with the result.
  const cli::AddressLookup& names = **lookup;
  results.add(std::move(*lookup));
  const cli::FormatContext context{options.results.meta, names.book()};
  if (options.results.live) {
    std::string error;
    auto view = cli::LiveView::open(loop, context.names, [&loop] { loop.stop(); }, error);
    if (!view) return fail(error, 2);
    results.add(std::move(view));
  }
  const auto on_stdout = options.results.live ? std::nullopt : std::optional(options.results.format);
  if (auto error = cli::add_outputs(results, on_stdout, writer, options.results.files, context))
    return fail(*error, 2);
  ResultsSink sink(results);
  auto tracer = runtime::Tracer::create(options.tracer, sink);
  if (!tracer) return fail(tracer.error());
  if (auto s = (*tracer)->attach(loop); !s) return fail(s.error());
  auto metrics = cli::serve_metrics(options.metrics, results, loop, [&tracer] { return tracer->get(); });
  if (!metrics) return fail(metrics.error());
  if (*metrics) (*metrics)->recorder()->set_lookup_source([&names] { return names.counts(); });
  if (auto s = sys::drop_privileges(options.user); !s) return fail(s.error());
  loop.on_signal([&](int) { loop.stop(); });
  fmt::print(stderr, "nfqtrace: tracing (queue {}, {} mode); Ctrl-C to stop\n",
             options.tracer.queue.queue_id, core::to_string(options.tracer.engine.trace.mode));
  if (const auto stale = (*tracer)->counters().stale_marks_cleared; stale > 0)
    fmt::print(stderr, "nfqtrace: cleared the skip mark an earlier run left on {} connections\n",
               stale);

  int status = 0;
  if (!(*tracer)->done()) {
    if (auto s = loop.run(); !s) status = fail(s.error());
  }
  if (const auto& fatal = (*tracer)->fatal()) status = fail(*fatal);
  if (auto s = (*tracer)->shutdown(); !s) status = fail("removing rules: " + cli::explain(s.error()));
  results.finish();
  std::fputs(cli::run_summary("nfqtrace", **tracer).c_str(), stderr);
  return status;
}
