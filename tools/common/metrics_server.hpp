// The HTTP endpoint of --metrics: GET /metrics, served from the tool's own
// event loop.
//
// Why libmicrohttpd (libmicrohttpd-dev) and not cpp-httplib or our own
// server: libmicrohttpd parses HTTP, bounds what a client may send and times
// out silent clients, and in its epoll mode runs no thread of its own: it
// hands us one epoll descriptor to watch (sys::EventLoop::watch) and a
// timeout (a sys::Timer), and does its work, never blocking, when we call
// it. So the page is written in the loop's thread straight from the tracer's
// counters, with no snapshot to publish under a mutex. cpp-httplib runs a
// thread (a pool) of blocking sockets; a hand-written server would be one
// more HTTP parser to get right and fuzz.
//
// What a client gets: GET or HEAD /metrics: 200 and the page; another path:
// 404; another method: 405; a request line and headers over the 16 KiB a
// connection may use: 431 (libmicrohttpd's own answer); malformed HTTP: 400.
// At most 16 connections at once (8 from one address), each closed after
// 10 s of silence.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "metrics.hpp"
#include "nfqtrace/sys/error.hpp"
#include "nfqtrace/sys/event_loop.hpp"

namespace nfqtrace::cli {

class MetricsServer {
 public:
  // Binds and listens now (before privileges are dropped) and serves from
  // `loop`; `page` writes the page at each scrape (from `recorder`'s counts).
  static sys::Result<std::unique_ptr<MetricsServer>> start(const ListenAddress& address,
                                                           sys::EventLoop& loop,
                                                           std::function<std::string()> page,
                                                           MetricsRecorder* recorder = nullptr);
  ~MetricsServer();  // stops serving (before the loop goes)
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port it listens on (the one asked for, or the kernel's pick for 0).
  std::uint16_t port() const;

  // The recorder it was started with (for the look-up hook:
  // recorder()->set_lookup_counts(...)); nullptr if none.
  MetricsRecorder* recorder();

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A tool's --metrics in one call, after its tracer is set up and before it
// drops its privileges: adds a recorder to `results` and serves its page,
// with the tracer's counters (`tracer()` at each scrape; nullptr: none) and,
// for nfqtrace-server, the clients connected. nullptr without --metrics.
sys::Result<std::unique_ptr<MetricsServer>> serve_metrics(
    const MetricsOptions& options, Results& results, sys::EventLoop& loop,
    std::function<const runtime::Tracer*()> tracer,
    std::function<std::optional<std::uint64_t>()> server_clients = {});

}  // namespace nfqtrace::cli
