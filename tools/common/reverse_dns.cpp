#include "reverse_dns.hpp"

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <mutex>

#include <fmt/format.h>

#include "nfqtrace/sys/clock.hpp"

namespace nfqtrace::cli {

struct DnsResolver::Channel {
  ares_channel channel = nullptr;
};

namespace {

// One query's callback, owned by c-ares until it answers (or is destroyed).
template <typename Callback>
struct Pending {
  DnsResolver* resolver;
  std::size_t* pending;
  Callback done;
};

void library_init() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '"')) s.remove_suffix(1);
  return s;
}

// The '|'-separated fields of a Cymru record, trimmed.
std::vector<std::string_view> fields(std::string_view record) {
  std::vector<std::string_view> out;
  while (true) {
    const std::size_t bar = record.find('|');
    out.push_back(trim(record.substr(0, bar)));
    if (bar == std::string_view::npos) break;
    record.remove_prefix(bar + 1);
  }
  return out;
}

}  // namespace

DnsResolver::DnsResolver(sys::EventLoop& loop, sys::Timer timer)
    : loop_(loop), timer_(std::move(timer)), channel_(std::make_unique<Channel>()) {}

sys::Result<std::unique_ptr<DnsResolver>> DnsResolver::create(sys::EventLoop& loop) {
  library_init();
  auto timer = sys::Timer::create();
  if (!timer) return unexpected(timer.error());
  std::unique_ptr<DnsResolver> r(new DnsResolver(loop, std::move(*timer)));
  ares_options options{};
  options.sock_state_cb = [](void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<DnsResolver*>(data)->socket_state(fd, readable != 0, writable != 0);
  };
  options.sock_state_cb_data = r.get();
  const int status = ares_init_options(&r->channel_->channel, &options, ARES_OPT_SOCK_STATE_CB);
  if (status != ARES_SUCCESS) {
    r->channel_->channel = nullptr;
    return unexpected(sys::Error{fmt::format("DNS resolver: {}", ares_strerror(status))});
  }
  DnsResolver* self = r.get();
  if (auto s = loop.watch(r->timer_.fd(), [self] {
        if (self->timer_.expired()) self->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      });
      !s)
    return unexpected(s.error());
  return r;
}

DnsResolver::~DnsResolver() {
  destroying_ = true;
  if (channel_->channel != nullptr) ares_destroy(channel_->channel);  // drops the callbacks
  for (int fd : watched_) loop_.unwatch(fd);
  loop_.unwatch(timer_.fd());
}

void DnsResolver::socket_state(int fd, bool readable, bool writable) {
  if (!readable && !writable) {
    if (watched_.erase(fd) != 0) loop_.unwatch(fd);
    return;
  }
  if (destroying_) return;
  if (watched_.contains(fd)) {
    (void)loop_.want_writable(fd, writable);
    return;
  }
  const auto status = loop_.watch(
      fd,
      [this, fd](sys::EventLoop::Readiness ready) {
        // A hang-up or error: reading tells c-ares which.
        process(ready.readable || ready.hangup ? fd : ARES_SOCKET_BAD,
                ready.writable ? fd : ARES_SOCKET_BAD);
      },
      writable);
  if (status) watched_.insert(fd);
}

void DnsResolver::process(int read_fd, int write_fd) {
  ares_process_fd(channel_->channel, read_fd, write_fd);
  rearm();
}

void DnsResolver::rearm() {
  if (destroying_) return;
  timeval tv{};
  if (ares_timeout(channel_->channel, nullptr, &tv) == nullptr) {
    (void)timer_.set(std::nullopt);
    return;
  }
  const auto wait = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
  (void)timer_.set(sys::now().mono + std::chrono::duration_cast<core::Duration>(wait));
}

void DnsResolver::reverse(const wire::Address& addr, NameCallback done) {
  ++pending_;
  auto* query = new Pending<NameCallback>{this, &pending_, std::move(done)};
  const bool v4 = addr.family == wire::Family::v4;
  ares_gethostbyaddr(
      channel_->channel, addr.bytes.data(), v4 ? 4 : 16, v4 ? AF_INET : AF_INET6,
      [](void* arg, int status, int /*timeouts*/, hostent* host) {
        std::unique_ptr<Pending<NameCallback>> p(static_cast<Pending<NameCallback>*>(arg));
        --*p->pending;
        if (status == ARES_EDESTRUCTION) return;
        if (status == ARES_SUCCESS && host != nullptr && host->h_name != nullptr && *host->h_name != '\0')
          p->done(std::string(host->h_name));
        else
          p->done(std::nullopt);
      },
      query);
  rearm();
}

void DnsResolver::txt(const std::string& name, TxtCallback done) {
  ++pending_;
  auto* query = new Pending<TxtCallback>{this, &pending_, std::move(done)};
  ares_query(
      channel_->channel, name.c_str(), ns_c_in, ns_t_txt,
      [](void* arg, int status, int /*timeouts*/, unsigned char* answer, int length) {
        std::unique_ptr<Pending<TxtCallback>> p(static_cast<Pending<TxtCallback>*>(arg));
        --*p->pending;
        if (status == ARES_EDESTRUCTION) return;
        ares_txt_ext* txt = nullptr;
        if (status != ARES_SUCCESS || ares_parse_txt_reply_ext(answer, length, &txt) != ARES_SUCCESS) {
          p->done(std::nullopt);
          return;
        }
        // A record's strings come as chunks; record_start marks each record's first.
        std::vector<std::string> records;
        for (const ares_txt_ext* t = txt; t != nullptr; t = t->next) {
          if (t->record_start != 0 || records.empty()) records.emplace_back();
          records.back().append(reinterpret_cast<const char*>(t->txt), t->length);
        }
        ares_free_data(txt);
        if (records.empty())
          p->done(std::nullopt);
        else
          p->done(std::move(records));
      },
      query);
  rearm();
}

std::string cymru_origin_name(const wire::Address& addr) {
  std::string out;
  if (addr.family == wire::Family::v4) {
    for (int i = 3; i >= 0; --i) out += fmt::format("{}.", addr.bytes[static_cast<std::size_t>(i)]);
    return out + "origin.asn.cymru.com";
  }
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    const std::uint8_t b = addr.bytes[static_cast<std::size_t>(i)];
    out += hex[b & 0xf];
    out += '.';
    out += hex[b >> 4];
    out += '.';
  }
  return out + "origin6.asn.cymru.com";
}

std::string cymru_as_name_query(std::uint32_t asn) { return fmt::format("AS{}.asn.cymru.com", asn); }

std::optional<std::uint32_t> parse_cymru_origin(const std::vector<std::string>& records) {
  std::optional<std::uint32_t> best;
  int best_len = -1;
  for (const std::string& record : records) {
    const auto f = fields(record);
    // The first of the ASes before the first '|'.
    std::string_view ases = f[0];
    const std::size_t space = ases.find(' ');
    std::string_view first = ases.substr(0, space);
    std::uint32_t asn = 0;
    const auto [end, ec] = std::from_chars(first.data(), first.data() + first.size(), asn);
    if (first.empty() || ec != std::errc{} || end != first.data() + first.size() || asn == 0) continue;
    int len = 0;
    if (f.size() > 1) {
      const std::size_t slash = f[1].find('/');
      if (slash != std::string_view::npos) {
        const std::string_view bits = f[1].substr(slash + 1);
        std::from_chars(bits.data(), bits.data() + bits.size(), len);
      }
    }
    if (len > best_len) {
      best = asn;
      best_len = len;
    }
  }
  return best;
}

std::string parse_cymru_as_name(const std::vector<std::string>& records) {
  for (const std::string& record : records) {
    const auto f = fields(record);
    if (f.size() >= 5 && !f[4].empty()) return std::string(f[4]);
  }
  return "";
}

}  // namespace nfqtrace::cli
