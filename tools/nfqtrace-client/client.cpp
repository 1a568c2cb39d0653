#include "client.hpp"

#include <fmt/format.h>
#include <poll.h>

#include <array>

#include "nfqtrace/base/overloaded.hpp"
#include "nfqtrace/coop/nat_view.hpp"
#include "nfqtrace/output/compare.hpp"
#include "nfqtrace/output/format.hpp"
#include "nfqtrace/sys/clock.hpp"
#include "nfqtrace/sys/privileges.hpp"
#include "nfqtrace/sys/tcp.hpp"
#include "../common/address_lookup.hpp"
#include "../common/live_view.hpp"
#include "../common/tool_start.hpp"

namespace nfqtrace::client {
namespace {

struct Failure {
  std::string reason;
};

// Connects to the first address of `endpoint` that answers within `timeout`.
sys::Result<sys::UniqueFd> connect_to(const sys::Endpoint& endpoint, core::Duration timeout) {
  auto addresses = sys::resolve(endpoint.host);
  if (!addresses) return addresses.error();
  std::string last_error;
  for (const wire::Address& a : *addresses) {
    auto fd = sys::tcp_connect(a, endpoint.port);
    if (!fd) {
      last_error = fd.error().message();
      continue;
    }
    pollfd p{fd->get(), POLLOUT, 0};
    const int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    const int ready = poll(&p, 1, ms);
    if (ready == 1) {
      if (auto s = sys::connect_result(fd->get()); !s) {
        last_error = s.error().message() + " (" + a.to_string() + ")";
        continue;
      }
      return std::move(*fd);
    }
    last_error = "no answer from " + a.to_string();
  }
  return sys::Error{"server unreachable: " + last_error};
}

// Hands the results of both directions on as they come, and keeps the last
// trace of each: in text, the two are shown side by side at the end.
class Printer {
 public:
  explicit Printer(cli::ResultConsumer& results) : results_(results) {}

  void forward_hop(const core::HopEvent& hop) { results_.hop(hop, cli::Direction::forward); }
  void forward_trace(const core::TraceResult& trace) {
    forward = annotated(trace);
    results_.trace(*forward, cli::Direction::forward);
  }
  void reverse_hop(const core::HopEvent& hop) { results_.hop(hop, cli::Direction::reverse); }
  void reverse_trace(const core::TraceResult& trace) {
    reverse = annotated(trace);
    results_.trace(*reverse, cli::Direction::reverse);
  }

  std::optional<core::TraceResult> forward, reverse;
  // The client's own end and what the server sees, once the server said.
  std::optional<std::pair<coop::Endpoint, coop::Endpoint>> ends;

  core::TraceResult annotated(core::TraceResult trace) const {
    if (ends) coop::note_nat(trace, ends->first, ends->second);
    return trace;
  }

 private:
  cli::ResultConsumer& results_;
};

class Client {
 public:
  Client(const ClientOptions& options, sys::EventLoop& loop, sys::UniqueFd socket,
         sys::Timer timer, Printer& printer, coop::Endpoint own)
      : loop_(loop),
        socket_(std::move(socket)),
        timer_(std::move(timer)),
        printer_(printer),
        own_(own),
        session_(options.server_params, options.filler_interval, options.overall_timeout,
                 sys::now(), own) {}

  std::optional<Failure> run(runtime::Tracer& tracer) {
    const int fd = socket_.get();
    if (auto s = loop_.watch(fd, [this](sys::EventLoop::Readiness r) { on_socket(r); }, true); !s)
      return Failure{s.error().message()};
    if (auto s = loop_.watch(timer_.fd(), [this] {
          if (timer_.expired()) {
            session_.on_timer(sys::now());
            pump();
          }
        });
        !s)
      return Failure{s.error().message()};
    pump();
    if (auto s = loop_.run(); !s) return Failure{cli::explain(s.error())};
    if (interrupted_) return Failure{"interrupted"};
    if (auto f = session_.failure()) return Failure{*f};
    if (tracer.fatal()) return Failure{cli::explain(*tracer.fatal())};
    return std::nullopt;
  }

  void interrupt() {
    interrupted_ = true;
    loop_.stop();
  }

  // The forward trace ended (the tracer reported it).
  void forward_ended() {
    session_.on_forward_trace_ended();
    pump();
  }

 private:
  void on_socket(sys::EventLoop::Readiness ready) {
    if (ready.readable || ready.hangup) {
      std::array<char, 8192> buffer;
      for (int i = 0; i < 16; ++i) {
        auto got = sys::read_some(socket_.get(), buffer);
        if (!got || (*got && **got == 0)) {
          session_.on_peer_closed(sys::now());
          break;
        }
        if (!*got) break;
        session_.on_bytes(std::span<const char>(buffer.data(), **got), sys::now());
      }
    }
    pump();
  }

  void pump() {
    // What the session has to say goes out first, a goodbye before the close.
    while (!session_.unsent().empty()) {
      auto wrote = sys::write_some(socket_.get(), session_.unsent());
      if (!wrote) {
        session_.on_peer_closed(sys::now());
        break;
      }
      if (*wrote == 0) break;
      session_.sent(*wrote);
    }
    if (!printer_.ends && session_.server_flow()) {
      const core::FlowKey& seen = *session_.server_flow();
      printer_.ends = std::pair{own_, coop::Endpoint{seen.dst, seen.dport}};
    }
    bool close = false;
    while (auto decision = session_.poll()) {
      std::visit(Overloaded{[&](const core::HopEvent& h) { printer_.reverse_hop(h); },
                            [&](const core::TraceResult& t) { printer_.reverse_trace(t); },
                            [&](const coop::CloseConnection&) { close = true; }},
                 *decision);
    }
    if (close) {
      loop_.stop();
      return;
    }
    (void)loop_.want_writable(socket_.get(), !session_.unsent().empty());
    (void)timer_.set(session_.poll_timeout());
  }

  sys::EventLoop& loop_;
  sys::UniqueFd socket_;
  sys::Timer timer_;
  Printer& printer_;
  coop::Endpoint own_;
  coop::ClientSession session_;
  bool interrupted_ = false;
};

// Hands the forward trace's results to the printer and tells the client.
class ForwardSink final : public runtime::ResultSink {
 public:
  explicit ForwardSink(Printer& printer) : printer_(printer) {}
  void on_hop(const core::HopEvent& hop) override { printer_.forward_hop(hop); }
  void on_trace(const core::TraceResult& trace) override {
    printer_.forward_trace(trace);
    if (client) client->forward_ended();
  }
  // Its one connection is traced once: its path cannot change.
  void on_path_change(const core::PathChange&) override {}
  Client* client = nullptr;

 private:
  Printer& printer_;
};

}  // namespace

int run_client(const ClientOptions& options) {
  const cli::ErrorReporter fail("nfqtrace-client");
  auto endpoint = sys::parse_endpoint(options.server);
  if (!endpoint)
    return fail(fmt::format("expected HOST:PORT or [IPv6]:PORT, got '{}'", options.server), 2);
  auto started = cli::start_tool(options.results.log_file, fail);
  if (auto* status = std::get_if<int>(&started)) return *status;
  // Named, not a structured binding: clang 14 cannot capture those in lambdas.
  cli::ToolStart& tool = std::get<cli::ToolStart>(started);
  cli::ResultWriter& writer = tool.writer;
  sys::EventLoop& loop = tool.loop;
  auto socket = connect_to(*endpoint, options.connect_timeout);
  if (!socket) return fail(socket.error().message());
  auto flow = sys::connection_flow(socket->get());
  if (!flow) return fail(flow.error().message());
  auto timer = sys::Timer::create();
  if (!timer) return fail(timer.error().message());

  // The forward trace covers this connection and nothing else.
  runtime::TracerOptions tracer_options = options.tracer;
  tracer_options.filter.dports = {flow->dport};
  tracer_options.filter.host = flow->dst;
  sys::RuleSpec rules;
  rules.queue_id = tracer_options.queue.queue_id;
  rules.dports = {flow->dport};
  rules.local_port = flow->sport;
  rules.host = flow->dst;
  rules.probe_mark = tracer_options.probe_mark;
  rules.nflog_group = tracer_options.nflog_group;
  rules.log_all_peer_acks = tracer_options.engine.trace.mode == core::Mode::mangle;
  tracer_options.rules = rules;

  // Text on stdout is the two directions side by side, once both are known.
  const bool side_by_side = !options.results.live && options.results.format == cli::Format::text;
  cli::Results results;
  auto lookup = cli::AddressLookup::create(loop, options.lookup);
  if (!lookup) return fail(lookup.error());
  // First among the consumers: a name known by then goes with the result.
  const cli::AddressLookup& names = **lookup;
  results.add(std::move(*lookup));
  const cli::FormatContext context{options.results.meta, names.book()};
  Client* running = nullptr;  // q in the live view interrupts it as SIGINT does
  if (options.results.live) {
    std::string error;
    auto view = cli::LiveView::open(
        loop, context.names, [&running] { if (running) running->interrupt(); }, error);
    if (!view) return fail(error, 2);
    results.add(std::move(view));
  }
  const bool stdout_format = !side_by_side && !options.results.live;
  if (auto error = cli::add_outputs(
          results, stdout_format ? std::optional(options.results.format) : std::nullopt, writer,
          options.results.files, context))
    return fail(*error, 2);
  Printer printer(results);
  ForwardSink sink(printer);
  auto tracer = runtime::Tracer::create(tracer_options, sink);
  if (!tracer) return fail(tracer.error());
  if (auto s = (*tracer)->attach(loop); !s) return fail(s.error());

  if (auto s = sys::drop_privileges(options.user); !s) return fail(s.error());
  Client client(options, loop, std::move(*socket), std::move(*timer), printer,
                coop::Endpoint{flow->src, flow->sport});
  sink.client = &client;
  running = &client;
  loop.on_signal([&](int) { client.interrupt(); });
  auto failure = client.run(**tracer);
  sink.client = nullptr;
  running = nullptr;
  (void)(*tracer)->shutdown();
  results.finish();
  if (failure) return fail(failure->reason);

  if (side_by_side && printer.forward && printer.reverse)
    writer.write(output::compare_text(*printer.forward, *printer.reverse));
  return 0;
}

}  // namespace nfqtrace::client
