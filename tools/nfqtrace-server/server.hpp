// nfqtrace-server: accepts clients on IPv4 and IPv6, traces the reverse path
// of each client's connection (its own packets to that client) with the
// parameters the client asked for, clamped to the server's limits, and
// streams the results back inside that connection.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "../common/metrics.hpp"
#include "../common/results.hpp"
#include "../common/address_lookup.hpp"
#include "../common/trace_options.hpp"
#include "nfqtrace/coop/limits.hpp"
#include "nfqtrace/coop/server_session.hpp"
#include "nfqtrace/runtime/tracer.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/fd.hpp"
#include "nfqtrace/sys/timer.hpp"

namespace nfqtrace::server {

struct ServerOptions {
  runtime::TracerOptions tracer;
  std::uint16_t port = 0;
  std::size_t max_clients = 64;
  coop::ServerLimits limits;
  cli::ResultOptions results;
  cli::LookupOptions lookup;  // names and AS numbers of hop addresses
  cli::MetricsOptions metrics;
  std::string user = "nobody";
};

class Server final : public runtime::ResultSink {
 public:
  static sys::Result<std::unique_ptr<Server>> create(const ServerOptions& options,
                                                     sys::EventLoop& loop,
                                                     cli::ResultConsumer& results);
  ~Server() override;

  // Closes every client and stops tracing; the rules go.
  sys::Status shutdown();
  const std::optional<sys::Error>& fatal() const;
  std::size_t clients() const { return clients_.size(); }
  const runtime::Tracer* tracer() const { return tracer_.get(); }  // for the metrics

  // runtime::ResultSink: results of the traces, routed to their clients.
  void on_hop(const core::HopEvent& hop) override;
  void on_trace(const core::TraceResult& trace) override;
  // A client's connection is traced once: its path cannot change.
  void on_path_change(const core::PathChange&) override {}

 private:
  struct Client {
    sys::UniqueFd fd;
    core::FlowKey flow;  // the server's outgoing flow to this client
    coop::ServerSession session;
    bool want_write = false;
  };

  Server(const ServerOptions& options, sys::EventLoop& loop, cli::ResultConsumer& results,
         sys::Timer timer);
  void accept_from(int listen_fd);
  void on_client_ready(int fd, sys::EventLoop::Readiness ready);
  // Acts on what a client's session decided: trace, write, close.
  void pump(Client& client);
  void close_client(int fd, std::string_view reason);
  void on_timer();
  void rearm_timer();

  ServerOptions options_;
  sys::EventLoop& loop_;
  cli::ResultConsumer& results_;
  sys::Timer timer_;
  std::unique_ptr<runtime::Tracer> tracer_;
  std::vector<sys::UniqueFd> listeners_;
  std::unordered_map<int, std::unique_ptr<Client>> clients_;  // by socket
  std::unordered_map<core::FlowKey, int, core::FlowKeyHash> by_flow_;
  std::optional<sys::Error> fatal_;
};

}  // namespace nfqtrace::server
