// nfqtrace-client: connects to an nfqtrace-server, traces the forward path
// of that very connection itself, asks the server to trace the reverse path
// and send its results back, and shows both.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "../common/console.hpp"
#include "../common/address_lookup.hpp"
#include "../common/trace_options.hpp"
#include "nfqtrace/coop/client_session.hpp"
#include "nfqtrace/runtime/tracer.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/timer.hpp"

namespace nfqtrace::client {

struct ClientOptions {
  std::string server;                // HOST:PORT or [v6]:PORT
  runtime::TracerOptions tracer;     // the forward trace
  coop::TraceRequest server_params;   // asked of the server for the reverse trace
  cli::ResultOptions results;
  cli::LookupOptions lookup;  // names and AS numbers of hop addresses
  std::string user = "nobody";
  core::Duration connect_timeout = std::chrono::seconds(5);
  core::Duration overall_timeout = std::chrono::seconds(60);
  core::Duration filler_interval = std::chrono::milliseconds(50);
};

// Runs the whole exchange; returns the exit status (0: both traces ended)
// after printing a one-line reason for any failure.
int run_client(const ClientOptions& options);

}  // namespace nfqtrace::client
