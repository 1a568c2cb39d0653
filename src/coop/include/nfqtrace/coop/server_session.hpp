// The server side of one cooperating client's connection, as a pure state
// machine: bytes, trace results and the time go in; bytes to send, the trace
// to request and when to close come out. No system calls, no clock.
//
//   awaiting hello --hello--> tracing --on_trace--> done --client closes--> closed
//        |                      |                    |
//        +-- any violation or limit: error line queued, then closed --+
//
// The caller (one per accepted connection):
//   * feeds on_bytes with what it reads, on_peer_closed on EOF or a reset;
//   * passes the engine's hop events and finished trace of server_flow to
//     on_hop / on_trace;
//   * calls on_timer at poll_timeout();
//   * after every call writes what unsent() holds and reports it with
//     sent(n), then drains poll(): StartTrace (once, after a valid hello:
//     engine.request_trace(server_flow, params, now)), CloseConnection (once:
//     write what is left of unsent(), best effort, and close the socket).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "nfqtrace/base/output_queue.hpp"
#include "nfqtrace/coop/limits.hpp"
#include "nfqtrace/coop/line_reader.hpp"
#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/coop/session.hpp"
#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::coop {

// What a server session decides, besides the bytes it sends.
struct StartTrace {  // trace the server flow with these parameters, once
  core::TraceParams params;
};
using ServerOutput = std::variant<StartTrace, CloseConnection>;

class ServerSession {
 public:
  // `server_flow`: the server's outgoing flow of this connection (server
  // address and port -> client address and port), the one it traces.
  ServerSession(const ServerLimits& limits, const core::TraceParams& server_defaults,
                core::FlowKey server_flow, core::Instant now);

  void on_bytes(std::span<const char> bytes, core::Instant now);
  // Results of the trace of server_flow, as the engine reports them.
  void on_hop(const core::HopEvent& hop);
  void on_trace(const core::TraceResult& trace, core::Instant now);
  // At or after poll_timeout(); calling it early is harmless.
  void on_timer(core::Instant now);
  // The client closed the connection (EOF) or it broke.
  void on_peer_closed(core::Instant now);

  // Bytes to send, and how many of them were written.
  std::string_view unsent() const { return outgoing_; }
  void sent(std::size_t bytes) { outgoing_.erase(0, bytes); }
  // The next decision, oldest first.
  std::optional<ServerOutput> poll() { return outputs_.poll(); }
  // Monotonic time of the next on_timer; none once closed.
  std::optional<core::Duration> poll_timeout() const;

  // True from the hello until the trace ended: the server's filler lines
  // give the trace packets to work with.
  bool wants_filler_traffic() const { return state_ == State::tracing; }
  bool should_close() const { return state_ == State::closed; }
  // Why it closed: "finished" after a complete exchange, otherwise the
  // problem ("idle: ...", "time limit ...", "client not reading", ...).
  std::string_view close_reason() const { return close_reason_; }
  // The trace parameters granted to the client, once it said hello.
  const std::optional<core::TraceParams>& granted() const { return granted_; }
  // Marks `trace` (the server's trace of this client's connection) with the
  // NAT between them, when the client's own end is not what the server sees.
  void note_nat(core::TraceResult& trace) const;

 private:
  enum class State : std::uint8_t { awaiting_hello, tracing, done, closed };

  void handle_line(const std::string& line, core::Instant now);
  void on_hello(int version, const TraceRequest& request, const std::optional<Endpoint>& client,
                core::Instant now);
  void enforce_time_limits(core::Instant now);
  void send(const Message& message);
  // Tells the client why (an error line), then closes.
  void refuse(const std::string& reason);
  void close(std::string reason, bool failed = true);

  ServerLimits limits_;
  core::TraceParams defaults_;
  core::FlowKey flow_;
  LineReader reader_;
  State state_ = State::awaiting_hello;
  core::Duration started_, last_heard_, next_filler_{0};
  std::uint64_t fillers_sent_ = 0;
  std::optional<core::TraceParams> granted_;
  std::optional<Endpoint> client_sees_;  // from its hello
  bool trace_started_ = false;
  std::string outgoing_;
  std::string close_reason_;
  OutputQueue<ServerOutput> outputs_;
};

}  // namespace nfqtrace::coop
