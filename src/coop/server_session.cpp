#include "nfqtrace/coop/server_session.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "nfqtrace/coop/nat_view.hpp"
#include "session_common.hpp"

namespace nfqtrace::coop {

ServerSession::ServerSession(const ServerLimits& limits, const core::TraceParams& server_defaults,
                             core::FlowKey server_flow, core::Instant now)
    : limits_(limits),
      defaults_(server_defaults),
      flow_(server_flow),
      reader_(limits.max_line),
      started_(now.mono),
      last_heard_(now.mono) {}

void ServerSession::on_bytes(std::span<const char> bytes, core::Instant now) {
  if (state_ == State::closed) return;
  // Limits first, so the outcome does not depend on whether the caller's
  // timer fired before these bytes were read.
  enforce_time_limits(now);
  if (state_ == State::closed) return;
  last_heard_ = now.mono;

  const auto& error = reader_.feed(bytes);
  for (const std::string& line : reader_.lines()) {
    handle_line(line, now);
    if (state_ == State::closed) break;
  }
  reader_.lines().clear();
  if (error && state_ != State::closed) refuse(error->message);
  // Decided once the whole chunk is read: a client that breaks the protocol
  // right after its hello gets no trace nobody would read.
  if (state_ == State::tracing && !trace_started_) {
    trace_started_ = true;
    outputs_.push(StartTrace{*granted_});
  }
}

void ServerSession::handle_line(const std::string& line, core::Instant now) {
  const Decoded decoded = decode(line);
  if (!decoded) {
    refuse(decoded.error().reason);
    return;
  }
  const Message& message = *decoded;
  if (const auto* error = std::get_if<ErrorMessage>(&message)) {
    close("client error: " + printable(error->message));
    return;
  }
  const std::string type = printable(type_of(message), 64);

  if (state_ == State::awaiting_hello) {
    // A client hello that carries a "flow" decodes as a ServerHello: an
    // unknown field to the server, ignored.
    if (const auto* hello = std::get_if<Hello>(&message))
      on_hello(hello->version, hello->params, hello->client, now);
    else if (const auto* with_flow = std::get_if<ServerHello>(&message))
      on_hello(with_flow->version, with_flow->params, std::nullopt, now);
    else
      refuse(fmt::format("unexpected {} before hello", type));
    return;
  }

  if (std::holds_alternative<Filler>(message) || std::holds_alternative<Unknown>(message))
    return;  // filler is only traffic; unknown types are for later versions
  // A second hello, or what only a server sends.
  refuse(fmt::format("unexpected {}", type));
}

void ServerSession::on_hello(int version, const TraceRequest& request,
                             const std::optional<Endpoint>& client, core::Instant now) {
  client_sees_ = client;
  if (version != protocol_version) {
    refuse(fmt::format("unsupported version {} (this server speaks {})", version,
                       protocol_version));
    return;
  }
  granted_ = clamp(request, defaults_, limits_);
  state_ = State::tracing;
  next_filler_ = deadline_after(now.mono, limits_.filler_interval);
  send(ServerHello{protocol_version, request_of(*granted_), flow_});
}

void ServerSession::on_hop(const core::HopEvent& hop) {
  if (state_ == State::tracing) send(HopMessage{hop});
}

void ServerSession::note_nat(core::TraceResult& trace) const {
  if (client_sees_) coop::note_nat(trace, *client_sees_, Endpoint{flow_.dst, flow_.dport});
}

void ServerSession::on_trace(const core::TraceResult& trace, core::Instant) {
  if (state_ != State::tracing) return;
  core::TraceResult annotated = trace;
  note_nat(annotated);
  send(TraceMessage{std::move(annotated)});
  send(Done{});
  if (state_ != State::closed) state_ = State::done;
}

void ServerSession::on_timer(core::Instant now) {
  if (state_ == State::closed) return;
  enforce_time_limits(now);
  if (state_ != State::tracing || now.mono < next_filler_) return;
  // At most one line per call, and the next one an interval from now: a
  // late timer never causes a burst.
  if (outgoing_.size() < filler_backlog_limit) send(make_filler(++fillers_sent_));
  next_filler_ = deadline_after(now.mono, limits_.filler_interval);
}

void ServerSession::on_peer_closed(core::Instant) {
  if (state_ == State::closed) return;
  switch (state_) {
    case State::awaiting_hello: close("client closed the connection before its hello"); break;
    case State::tracing: close("client closed the connection before the trace was done"); break;
    default: close("finished", /*failed=*/false); break;
  }
}

void ServerSession::enforce_time_limits(core::Instant now) {
  if (now.mono >= deadline_after(started_, limits_.client_time_limit)) {
    refuse(fmt::format("time limit of {} reached", seconds_text(limits_.client_time_limit)));
  } else if (state_ == State::awaiting_hello &&
             now.mono >= deadline_after(started_, limits_.idle_timeout)) {
    refuse(fmt::format("no hello within {}", seconds_text(limits_.idle_timeout)));
  } else if (state_ != State::awaiting_hello &&
             now.mono >= deadline_after(last_heard_, limits_.idle_timeout)) {
    refuse(fmt::format("idle: nothing from the client for {}", seconds_text(limits_.idle_timeout)));
  }
}

std::optional<core::Duration> ServerSession::poll_timeout() const {
  if (state_ == State::closed) return std::nullopt;
  core::Duration next = deadline_after(started_, limits_.client_time_limit);
  const core::Duration idle_from = state_ == State::awaiting_hello ? started_ : last_heard_;
  next = std::min(next, deadline_after(idle_from, limits_.idle_timeout));
  if (state_ == State::tracing) next = std::min(next, next_filler_);
  return next;
}

void ServerSession::send(const Message& message) {
  outgoing_ += encode(message);
  if (outgoing_.size() > limits_.max_outgoing) {
    // Nothing more can reach a client that does not read, not even an error.
    outgoing_.clear();
    close("client not reading");
  }
}

void ServerSession::refuse(const std::string& reason) {
  outgoing_ += encode(ErrorMessage{reason});
  close(reason);
}

void ServerSession::close(std::string reason, bool failed) {
  state_ = State::closed;
  close_reason_ = std::move(reason);
  outputs_.push(CloseConnection{close_reason_, failed});
}

}  // namespace nfqtrace::coop
