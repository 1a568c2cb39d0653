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
//   * after a valid hello, takes take_trace_request() once and calls
//     engine.request_trace(server_flow, config, now);
//   * passes the engine's hop events and finished trace of server_flow to
//     on_hop / on_trace;
//   * calls on_timer at next_deadline();
//   * after every call writes what outgoing() holds and erases what was
//     written; once should_close(), writes what is left (best effort) and
//     closes the socket.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "nfqtrace/coop/limits.hpp"
#include "nfqtrace/coop/line_reader.hpp"
#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/core/config.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::coop {

class ServerSession {
 public:
  // `server_flow`: the server's outgoing flow of this connection (server
  // address and port -> client address and port), the one it traces.
  ServerSession(const ServerLimits& limits, const core::TraceConfig& server_defaults,
                core::FlowKey server_flow, core::Instant now);

  void on_bytes(std::span<const char> bytes, core::Instant now);
  // Results of the trace of server_flow, as the engine reports them.
  void on_hop(const core::HopEvent& hop);
  void on_trace(const core::TraceResult& trace, core::Instant now);
  // At or after next_deadline(); calling it early is harmless.
  void on_timer(core::Instant now);
  // The client closed the connection (EOF) or it broke.
  void on_peer_closed(core::Instant now);

  // Bytes to send; the caller erases what it has written.
  std::string& outgoing() { return outgoing_; }
  // The clamped trace to run, once, after a valid hello.
  std::optional<core::TraceConfig> take_trace_request();
  // True from the hello until the trace ended: the server's filler lines
  // give the trace packets to work with.
  bool wants_filler_traffic() const { return state_ == State::tracing; }
  bool should_close() const { return state_ == State::closed; }
  // Monotonic time of the next on_timer; none once closed.
  std::optional<core::Duration> next_deadline() const;
  // Why it closed: "finished" after a complete exchange, otherwise the
  // problem ("idle: ...", "time limit ...", "client not reading", ...).
  std::string_view close_reason() const { return close_reason_; }
  // The trace config granted to the client, once it said hello.
  const std::optional<core::TraceConfig>& granted() const { return granted_; }

 private:
  enum class State : std::uint8_t { awaiting_hello, tracing, done, closed };

  void handle_line(const std::string& line, core::Instant now);
  void on_hello(int version, const TraceParams& params, core::Instant now);
  void enforce_time_limits(core::Instant now);
  void send(const Message& message);
  // Tells the client why (an error line), then closes.
  void refuse(const std::string& reason);
  void close(std::string reason);

  ServerLimits limits_;
  core::TraceConfig defaults_;
  core::FlowKey flow_;
  LineReader reader_;
  State state_ = State::awaiting_hello;
  core::Duration started_, last_heard_, next_filler_{0};
  std::uint64_t fillers_sent_ = 0;
  std::optional<core::TraceConfig> granted_, request_;
  std::string outgoing_;
  std::string close_reason_;
};

}  // namespace nfqtrace::coop
