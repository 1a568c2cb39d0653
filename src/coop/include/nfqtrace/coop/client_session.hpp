// The client side of the cooperative protocol, as a pure state machine: the
// program traces the forward path of its connection itself; this asks the
// server for the reverse trace and collects what the server streams back.
//
//   hello sent --server hello--> receiving --done--> done
//   finished() once done and the forward trace ended; failure() on a server
//   error, a protocol violation, the overall timeout or an early close.
//
// The caller:
//   * feeds on_bytes with what it reads, on_peer_closed on EOF or a reset;
//   * calls on_forward_trace_ended when its own trace of the connection ended;
//   * calls on_timer at poll_timeout();
//   * after every call writes what unsent() holds (it starts with the hello)
//     and reports it with sent(n), then drains poll(): the reverse trace's
//     HopEvents and TraceResult as they arrive, and CloseConnection once,
//     when both traces are over or the exchange failed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "nfqtrace/base/output_queue.hpp"
#include "nfqtrace/coop/line_reader.hpp"
#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/coop/session.hpp"
#include "nfqtrace/core/flow_key.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::coop {

// What a client session decides, besides the bytes it sends: the reverse
// trace's replies and its end, as the server streams them, and when to close.
using ClientOutput = std::variant<core::HopEvent, core::TraceResult, CloseConnection>;

class ClientSession {
 public:
  // A trace object can be far longer than any line a client sends (every
  // reply of up to maxttl x ttlrepeat probes), so the client's line limit
  // is generous; it still bounds memory.
  static constexpr std::size_t max_line = std::size_t{1} << 20;

  // `server_params`: what to ask the server for (unset: its defaults).
  // `filler_interval`: cadence of the client's filler lines, sent until
  // finished (they also keep the server from closing an idle connection).
  // `overall_timeout`: from now until finished.
  // `own`: the client's end of the connection (local address and port), told
  // to the server so that both can see a NAT between them.
  ClientSession(const TraceRequest& server_params, core::Duration filler_interval,
                core::Duration overall_timeout, core::Instant now,
                std::optional<Endpoint> own = std::nullopt);

  void on_bytes(std::span<const char> bytes, core::Instant now);
  void on_forward_trace_ended();
  // At or after poll_timeout(); calling it early is harmless.
  void on_timer(core::Instant now);
  // The server closed the connection (EOF) or it broke.
  void on_peer_closed(core::Instant now);

  // Bytes to send, and how many of them were written.
  std::string_view unsent() const { return outgoing_; }
  void sent(std::size_t bytes) { outgoing_.erase(0, bytes); }
  // The next decision, oldest first.
  std::optional<ClientOutput> poll() { return outputs_.poll(); }

  // Both traces over, no failure: close the connection.
  bool finished() const;
  // One line saying what went wrong: "server refused: ...", "server error:
  // ...", "protocol violation: ...", "timeout waiting for the server",
  // "server closed the connection before its trace was done".
  const std::optional<std::string>& failure() const { return failure_; }
  bool should_close() const { return finished() || failure_.has_value(); }
  // Monotonic time of the next on_timer; none once finished or failed.
  std::optional<core::Duration> poll_timeout() const;

  // From the server's hello: the parameters it runs with and the flow it
  // traces (its outgoing flow: server -> this client).
  const std::optional<TraceRequest>& effective_params() const { return effective_params_; }
  const std::optional<core::FlowKey>& server_flow() const { return server_flow_; }

 private:
  enum class State : std::uint8_t { awaiting_hello, receiving, done };

  void handle_line(const std::string& line);
  void handle_server_hello(const Message& message);
  void handle_result(const Message& message);
  // Failures the client detects: it tells the server why, then closes.
  void give_up(const std::string& reason);
  void violation(const std::string& what);  // give_up("protocol violation: ...")
  void fail(std::string reason);
  // Both traces over: close, once.
  void maybe_finish();

  LineReader reader_{max_line};
  State state_ = State::awaiting_hello;
  bool forward_ended_ = false;
  bool peer_closed_ = false;
  core::Duration interval_, deadline_, next_filler_;
  std::uint64_t fillers_sent_ = 0;
  std::optional<TraceRequest> effective_params_;
  std::optional<core::FlowKey> server_flow_;
  std::optional<std::string> failure_;
  bool close_decided_ = false;
  std::string outgoing_;
  OutputQueue<ClientOutput> outputs_;
};

}  // namespace nfqtrace::coop
