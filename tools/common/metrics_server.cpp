#include "metrics_server.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string_view>

#include "nfqtrace/sys/clock.hpp"
#include "nfqtrace/sys/fd.hpp"
#include "nfqtrace/sys/timer.hpp"

namespace nfqtrace::cli {
namespace {

constexpr unsigned kMaxConnections = 16;
constexpr unsigned kIdleTimeoutSeconds = 10;
constexpr std::size_t kConnectionMemory = 16 * 1024;  // bounds a request's line and headers
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

// A listening socket on `at`; the caller owns it.
sys::Result<int> listen_on(const ListenAddress& at) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (at.address.family == wire::Family::v4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(at.port);
    std::memcpy(&sin->sin_addr, at.address.bytes.data(), 4);
    length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(at.port);
    std::memcpy(&sin6->sin6_addr, at.address.bytes.data(), 16);
    length = sizeof(sockaddr_in6);
  }
  const int family = at.address.family == wire::Family::v4 ? AF_INET : AF_INET6;
  sys::UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sys::Error::from_errno("--metrics: socket");
  const int on = 1;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (family == AF_INET6) (void)setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  const std::string where = (family == AF_INET6 ? "[" + at.address.to_string() + "]"
                                                : at.address.to_string()) +
                            ":" + std::to_string(at.port);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) != 0)
    return sys::Error::from_errno("--metrics: bind " + where);
  if (listen(fd.get(), 16) != 0) return sys::Error::from_errno("--metrics: listen on " + where);
  const int raw = dup(fd.get());  // the UniqueFd closes its own
  if (raw < 0) return sys::Error::from_errno("--metrics: dup");
  return raw;
}

MHD_Result reply(MHD_Connection* connection, unsigned status, std::string_view body,
                 const char* content_type) {
  MHD_Response* response =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  (void)MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    (void)MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace

struct MetricsServer::Impl {
  sys::EventLoop& loop;
  MetricsRecorder* recorder = nullptr;  // owned by the tool's Results
  std::function<std::string()> page;
  sys::Timer timer;
  MHD_Daemon* daemon = nullptr;
  int epoll_fd = -1;
  std::uint16_t port = 0;

  Impl(sys::EventLoop& l, std::function<std::string()> p, sys::Timer t)
      : loop(l), page(std::move(p)), timer(std::move(t)) {}
  ~Impl() {
    if (daemon != nullptr) MHD_stop_daemon(daemon);  // closes the listening socket
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/,
                               const char* /*upload_data*/, std::size_t* /*upload_data_size*/,
                               void** /*request_state*/) {
    auto* self = static_cast<Impl*>(cls);
    const std::string_view m = method, path = url;
    if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD)
      return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", "text/plain");
    if (path != "/metrics")
      return reply(connection, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", "text/plain");
    return reply(connection, MHD_HTTP_OK, self->page(), kContentType);
  }

  // Does what is due (never blocking), then arms the timer for what comes next.
  void run() {
    (void)MHD_run(daemon);
    MHD_UNSIGNED_LONG_LONG timeout_ms = 0;
    if (MHD_get_timeout(daemon, &timeout_ms) != MHD_YES) {
      (void)timer.set(std::nullopt);
      return;
    }
    (void)timer.set(sys::now().mono + std::chrono::milliseconds(timeout_ms));
  }
};

sys::Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const ListenAddress& address,
                                                                 sys::EventLoop& loop,
                                                                 std::function<std::string()> page,
                                                                 MetricsRecorder* recorder) {
  auto timer = sys::Timer::create();
  if (!timer) return timer.error();
  auto impl = std::make_unique<Impl>(loop, std::move(page), std::move(*timer));
  impl->recorder = recorder;
  auto fd = listen_on(address);
  if (!fd) return fd.error();
  const int listen_fd = *fd;

  sockaddr_storage bound{};
  socklen_t bound_length = sizeof bound;
  if (getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) == 0) {
    impl->port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  unsigned flags = MHD_USE_EPOLL;
  if (address.address.family == wire::Family::v6) flags |= MHD_USE_IPv6;
  impl->daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &Impl::on_request, impl.get(),
      MHD_OPTION_LISTEN_SOCKET, listen_fd,
      MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxConnections / 2,
      MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory,
      MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    close(listen_fd);
    return sys::Error{"--metrics: libmicrohttpd would not start", 0};
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(impl->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  if (info == nullptr) return sys::Error{"--metrics: libmicrohttpd has no epoll descriptor", 0};
  impl->epoll_fd = info->epoll_fd;

  Impl* self = impl.get();
  std::unique_ptr<MetricsServer> server(new MetricsServer(std::move(impl)));
  if (auto s = loop.watch(self->epoll_fd, [self] { self->run(); }); !s) return s.error();
  if (auto s = loop.watch(self->timer.fd(), [self] {
        if (self->timer.expired()) self->run();
      });
      !s)
    return s.error();
  self->run();
  return server;
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() {
  if (!impl_) return;
  if (impl_->epoll_fd >= 0) impl_->loop.unwatch(impl_->epoll_fd);
  impl_->loop.unwatch(impl_->timer.fd());
}

std::uint16_t MetricsServer::port() const { return impl_->port; }
MetricsRecorder* MetricsServer::recorder() { return impl_->recorder; }

sys::Result<std::unique_ptr<MetricsServer>> serve_metrics(
    const MetricsOptions& options, Results& results, sys::EventLoop& loop,
    std::function<const runtime::Tracer*()> tracer,
    std::function<std::optional<std::uint64_t>()> server_clients) {
  if (!options.listen) return std::unique_ptr<MetricsServer>();
  auto owned = std::make_unique<MetricsRecorder>(options.top);
  MetricsRecorder* recorder = owned.get();
  auto page = [recorder, tracer = std::move(tracer), clients = std::move(server_clients)] {
    MetricsSnapshot snapshot = metrics_snapshot(*recorder, tracer ? tracer() : nullptr);
    if (clients) snapshot.server_clients = clients();
    return metrics_text(snapshot);
  };
  auto server = MetricsServer::start(*options.listen, loop, std::move(page), recorder);
  if (!server) return server.error();
  results.add(std::move(owned));
  return server;
}

}  // namespace nfqtrace::cli
