#include "server.hpp"

#include <fmt/format.h>

#include <array>

#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/output/format.hpp"
#include "nfqtrace/sys/clock.hpp"
#include "nfqtrace/sys/tcp.hpp"

namespace nfqtrace::server {

Server::Server(const ServerOptions& options, sys::EventLoop& loop, cli::ResultConsumer& results,
               sys::Timer timer)
    : options_(options), loop_(loop), results_(results), timer_(std::move(timer)) {}

Server::~Server() { (void)shutdown(); }

sys::Result<std::unique_ptr<Server>> Server::create(const ServerOptions& options,
                                                    sys::EventLoop& loop,
                                                    cli::ResultConsumer& results) {
  auto timer = sys::Timer::create();
  if (!timer) return timer.error();
  std::unique_ptr<Server> s(new Server(options, loop, results, std::move(*timer)));

  // Listen first: a port in use is the likeliest mistake, and nothing has
  // been installed yet when it shows.
  for (wire::Family family : {wire::Family::v4, wire::Family::v6}) {
    auto fd = sys::tcp_listen(family, options.port);
    if (!fd) {
      if (family == wire::Family::v6 && !s->listeners_.empty()) continue;  // no IPv6 here
      return fd.error();
    }
    s->listeners_.push_back(std::move(*fd));
  }

  auto tracer = runtime::Tracer::create(options.tracer, *s);
  if (!tracer) return tracer.error();
  s->tracer_ = std::move(*tracer);
  if (auto st = s->tracer_->attach(loop); !st) return st.error();

  Server* self = s.get();
  for (const sys::UniqueFd& l : s->listeners_) {
    const int fd = l.get();
    if (auto st = loop.watch(fd, [self, fd] { self->accept_from(fd); }); !st) return st.error();
  }
  if (auto st = loop.watch(s->timer_.fd(), [self] {
        if (self->timer_.expired()) self->on_timer();
      });
      !st)
    return st.error();
  return s;
}

void Server::accept_from(int listen_fd) {
  for (;;) {
    auto accepted = sys::tcp_accept(listen_fd);
    if (!accepted) {
      fmt::print(stderr, "nfqtrace-server: {}\n", accepted.error().message());
      return;
    }
    if (!accepted->valid()) return;  // nothing more pending
    sys::UniqueFd fd = std::move(*accepted);
    if (clients_.size() >= options_.max_clients) {
      // Say why before closing: a client deserves a reason, not a reset.
      const std::string busy = coop::encode(coop::ErrorMessage{"server busy: too many clients"});
      (void)sys::write_some(fd.get(), busy);
      continue;
    }
    auto flow = sys::connection_flow(fd.get());
    if (!flow) continue;
    const int raw = fd.get();
    auto client = std::make_unique<Client>(Client{
        std::move(fd), *flow,
        coop::ServerSession(options_.limits, options_.tracer.engine.trace, *flow, sys::now()), false});
    if (auto st = loop_.watch(
            raw, [this, raw](sys::EventLoop::Readiness r) { on_client_ready(raw, r); }, false);
        !st) {
      fmt::print(stderr, "nfqtrace-server: {}\n", st.error().message());
      continue;
    }
    fmt::print(stderr, "nfqtrace-server: client {}\n", output::flow_text(flow->reversed()));
    by_flow_[*flow] = raw;
    clients_.emplace(raw, std::move(client));
  }
  rearm_timer();
}

void Server::on_client_ready(int fd, sys::EventLoop::Readiness ready) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  if (ready.readable || ready.hangup) {
    std::array<char, 4096> buffer;
    // A bounded number of reads per wake-up: one client cannot starve the rest.
    for (int i = 0; i < 16; ++i) {
      auto got = sys::read_some(fd, buffer);
      if (!got || (*got && **got == 0)) {
        c.session.on_peer_closed(sys::now());
        break;
      }
      if (!*got) break;  // nothing more now
      c.session.on_bytes(std::span<const char>(buffer.data(), **got), sys::now());
      if (c.session.should_close()) break;
    }
  }
  pump(c);
}

void Server::pump(Client& c) {
  // What the session has to say goes out first, a goodbye before the close.
  while (!c.session.unsent().empty()) {
    auto wrote = sys::write_some(c.fd.get(), c.session.unsent());
    if (!wrote) {
      c.session.on_peer_closed(sys::now());
      break;
    }
    if (*wrote == 0) break;  // the socket is full: wait until it is writable
    c.session.sent(*wrote);
  }
  while (auto decision = c.session.poll()) {
    if (const auto* start = std::get_if<coop::StartTrace>(&*decision)) {
      tracer_->request_trace(c.flow, start->params);
      continue;
    }
    close_client(c.fd.get(), std::get<coop::CloseConnection>(*decision).reason);
    return;
  }
  const bool want_write = !c.session.unsent().empty();
  if (want_write != c.want_write) {
    c.want_write = want_write;
    (void)loop_.want_writable(c.fd.get(), want_write);
  }
  rearm_timer();
}

void Server::close_client(int fd, std::string_view reason) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  std::unique_ptr<Client> c = std::move(it->second);
  clients_.erase(it);
  by_flow_.erase(c->flow);
  loop_.unwatch(fd);
  fmt::print(stderr, "nfqtrace-server: client {} done: {}\n", output::flow_text(c->flow.reversed()),
             reason);
  tracer_->forget(c->flow);  // a trace still running ends as `closed`
  rearm_timer();
}

void Server::on_hop(const core::HopEvent& hop) {
  results_.hop(hop, cli::Direction::none);
  auto it = by_flow_.find(hop.flow);
  if (it == by_flow_.end()) return;
  auto c = clients_.find(it->second);
  if (c == clients_.end()) return;
  c->second->session.on_hop(hop);
  pump(*c->second);
}

void Server::on_trace(const core::TraceResult& trace) {
  Client* client = nullptr;
  if (auto it = by_flow_.find(trace.flow); it != by_flow_.end()) {
    if (auto c = clients_.find(it->second); c != clients_.end()) client = c->second.get();
  }
  core::TraceResult shown = trace;
  if (client) client->session.note_nat(shown);  // what the client told us of its own end
  results_.trace(shown, cli::Direction::none);
  if (!client) return;
  client->session.on_trace(trace, sys::now());
  pump(*client);
}

void Server::on_timer() {
  const core::Instant now = sys::now();
  std::vector<int> due;
  for (auto& [fd, c] : clients_) {
    auto d = c->session.poll_timeout();
    if (d && *d <= now.mono) due.push_back(fd);
  }
  for (int fd : due) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) continue;
    it->second->session.on_timer(now);
    pump(*it->second);
  }
  rearm_timer();
}

void Server::rearm_timer() {
  std::optional<core::Duration> next;
  for (auto& [fd, c] : clients_) {
    auto d = c->session.poll_timeout();
    if (d && (!next || *d < *next)) next = d;
  }
  if (auto st = timer_.set(next); !st && !fatal_) fatal_ = st.error();
}

sys::Status Server::shutdown() {
  // The tracer first: while our queue rules stand and nobody reads the
  // queue, a goodbye written to a client would wait there behind them.
  sys::Status stopped = Ok{};
  if (tracer_) {
    stopped = tracer_->shutdown();
    if (!fatal_ && tracer_->fatal()) fatal_ = tracer_->fatal();
  }
  std::vector<int> fds;
  for (auto& [fd, c] : clients_) fds.push_back(fd);
  for (int fd : fds) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) continue;
    const std::string bye = coop::encode(coop::ErrorMessage{"server shutting down"});
    (void)sys::write_some(fd, bye);
    by_flow_.erase(it->second->flow);
    loop_.unwatch(fd);
    clients_.erase(it);
  }
  for (const sys::UniqueFd& l : listeners_) loop_.unwatch(l.get());
  listeners_.clear();
  return stopped;
}

const std::optional<sys::Error>& Server::fatal() const { return fatal_; }

}  // namespace nfqtrace::server
