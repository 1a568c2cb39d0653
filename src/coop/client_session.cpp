#include "nfqtrace/coop/client_session.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "session_common.hpp"

namespace nfqtrace::coop {

ClientSession::ClientSession(const TraceRequest& server_params, core::Duration filler_interval,
                             core::Duration overall_timeout, core::Instant now,
                             std::optional<Endpoint> own)
    : interval_(filler_interval),
      deadline_(deadline_after(now.mono, overall_timeout)),
      next_filler_(deadline_after(now.mono, filler_interval)),
      outgoing_(encode(Hello{protocol_version, server_params, own})) {}

bool ClientSession::finished() const {
  return forward_ended_ && state_ == State::done && !failure_;
}

void ClientSession::on_bytes(std::span<const char> bytes, core::Instant) {
  if (should_close()) return;
  const auto& error = reader_.feed(bytes);
  for (const std::string& line : reader_.lines()) {
    handle_line(line);
    if (failure_) break;
  }
  reader_.lines().clear();
  if (error && !failure_) violation(error->message);
}

void ClientSession::handle_line(const std::string& line) {
  const Decoded decoded = decode(line);
  if (!decoded) {
    violation(decoded.error().reason);
    return;
  }
  const Message& message = *decoded;
  if (const auto* error = std::get_if<ErrorMessage>(&message)) {
    // Before its hello the server refuses the request; after, it gives up.
    fail(fmt::format("server {}: {}", state_ == State::awaiting_hello ? "refused" : "error",
                     printable(error->message)));
    return;
  }
  if (state_ == State::awaiting_hello) handle_server_hello(message);
  else handle_result(message);
}

void ClientSession::handle_server_hello(const Message& message) {
  const auto* hello = std::get_if<ServerHello>(&message);
  if (!hello) {
    violation(std::holds_alternative<Hello>(message)
                  ? std::string("server hello without flow")
                  : fmt::format("unexpected {} before the server's hello",
                                printable(type_of(message), 64)));
    return;
  }
  if (hello->version != protocol_version) {
    violation(fmt::format("server answered with version {}, not {}", hello->version,
                          protocol_version));
    return;
  }
  effective_params_ = hello->params;
  server_flow_ = hello->flow;
  state_ = State::receiving;
}

void ClientSession::handle_result(const Message& message) {
  if (std::holds_alternative<Filler>(message) || std::holds_alternative<Unknown>(message))
    return;  // filler is only traffic; unknown types are for later versions
  const auto* hop = std::get_if<HopMessage>(&message);
  const auto* trace = std::get_if<TraceMessage>(&message);
  const bool done = std::holds_alternative<Done>(message);
  if (state_ != State::receiving || !(hop || trace || done)) {
    violation(fmt::format("unexpected {}{}", printable(type_of(message), 64),
                          state_ == State::done ? " after done" : ""));
    return;
  }
  // Results of another connection would be printed as this one's.
  const core::FlowKey& flow = hop ? hop->hop.flow : trace ? trace->trace.flow : *server_flow_;
  if (flow != *server_flow_) {
    violation(fmt::format("{} of another flow", type_of(message)));
    return;
  }
  if (hop) outputs_.push(hop->hop);
  if (trace) outputs_.push(trace->trace);
  if (done) {
    state_ = State::done;
    maybe_finish();
  }
}

void ClientSession::on_forward_trace_ended() {
  forward_ended_ = true;
  maybe_finish();
}

void ClientSession::maybe_finish() {
  if (!finished() || close_decided_) return;
  close_decided_ = true;
  outputs_.push(CloseConnection{"finished", /*failed=*/false});
}

void ClientSession::on_timer(core::Instant now) {
  if (should_close()) return;
  if (now.mono >= deadline_) {
    give_up(state_ == State::done ? "timeout waiting for the forward trace"
                                  : "timeout waiting for the server");
    return;
  }
  if (peer_closed_ || now.mono < next_filler_) return;
  // One line per call at most, the next an interval from now: no bursts.
  if (outgoing_.size() < filler_backlog_limit) outgoing_ += encode(make_filler(++fillers_sent_));
  next_filler_ = deadline_after(now.mono, interval_);
}

void ClientSession::on_peer_closed(core::Instant) {
  peer_closed_ = true;
  if (should_close()) return;
  // After done the server owes nothing more; the forward trace may go on.
  if (state_ != State::done) fail("server closed the connection before its trace was done");
}

std::optional<core::Duration> ClientSession::poll_timeout() const {
  if (should_close()) return std::nullopt;
  return peer_closed_ ? deadline_ : std::min(deadline_, next_filler_);
}

void ClientSession::violation(const std::string& what) { give_up("protocol violation: " + what); }

void ClientSession::give_up(const std::string& reason) {
  outgoing_ += encode(ErrorMessage{reason});
  fail(reason);
}

void ClientSession::fail(std::string reason) {
  if (failure_ || close_decided_) return;
  failure_ = std::move(reason);
  close_decided_ = true;
  outputs_.push(CloseConnection{*failure_, /*failed=*/true});
}

}  // namespace nfqtrace::coop
