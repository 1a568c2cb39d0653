// Helpers for the OS adapter tests. Every test runs in the private network
// namespace netns_main.cpp made, so rules and addresses touch nothing else.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <algorithm>
#include <string>
#include <vector>

#include "nfqtrace/sys/fd.hpp"
#include "nfqtrace/sys/rules.hpp"

namespace nfqtrace::sys::testing {

// Runs a shell command in the test's namespace; true when it exits 0.
inline bool sh(const std::string& command) {
  const int status = std::system((command + " >/dev/null 2>&1").c_str());
  if (status != 0) ADD_FAILURE() << "command failed (" << status << "): " << command;
  return status == 0;
}

// Like sh() for cleanup: a failure is not a test failure (what it removes
// may be gone already); the status is the caller's to look at or not.
inline int sh_quiet(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

inline std::string capture(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char chunk[512];
    std::size_t got = 0;
    while ((got = std::fread(chunk, 1, sizeof chunk, pipe)) > 0) out.append(chunk, got);
    pclose(pipe);
  }
  return out;
}

// Packet counter of the rule tagged `-m comment --comment <tag>`.
inline long rule_packets(const char* tool, const char* chain, const std::string& tag) {
  const std::string out = capture(std::string(tool) + " -w -L " + chain + " -v -x -n | grep -F '/* " +
                                  tag + " */'");
  if (out.empty()) return -1;
  return std::strtol(out.c_str(), nullptr, 10);
}

// Empties the filter tables before and after each test using it.
class FirewallTest : public ::testing::Test {
 protected:
  void SetUp() override { flush(); }
  void TearDown() override { flush(); }
  static void flush() {
    sh_quiet("iptables -w -F");
    sh_quiet("ip6tables -w -F");
  }
};

// Sets an environment variable for one test, then puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// For tests that install Rules: forces the xtables back end (on a kernel
// with the nft queue expression, nftables would otherwise be chosen) and
// removes the rules of every queue id the test used, whatever happens.
class XtablesRulesTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (std::uint16_t id : used_) (void)Rules::remove_leftovers(id);
  }
  // Notes a queue id the test installs rules for; returns it.
  std::uint16_t use_queue(std::uint16_t queue_id) {
    used_.push_back(queue_id);
    return queue_id;
  }

 private:
  ScopedEnv backend_{"NFQTRACE_RULES_BACKEND", "xtables"};
  std::vector<std::uint16_t> used_;
};

// Test name suffix for tests run once per address family.
inline std::string family_name(const ::testing::TestParamInfo<int>& param) {
  return param.param == AF_INET ? "IPv4" : "IPv6";
}

inline bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

// Socket addresses on loopback for either family.
struct Endpoint {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }

  static Endpoint loopback(int family, std::uint16_t port) {
    Endpoint e;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&e.storage);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      e.length = sizeof(sockaddr_in);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&e.storage);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      a->sin6_addr = in6addr_loopback;
      e.length = sizeof(sockaddr_in6);
    }
    return e;
  }
  static Endpoint parse(const char* text, std::uint16_t port) {
    Endpoint e;
    auto* a4 = reinterpret_cast<sockaddr_in*>(&e.storage);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&e.storage);
    if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      a4->sin_port = htons(port);
      e.length = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(port);
      e.length = sizeof(sockaddr_in6);
    }
    return e;
  }
};

// A socket bound to an ephemeral port on loopback; returns the port.
inline std::uint16_t bound_port(int fd) {
  sockaddr_storage s{};
  socklen_t len = sizeof s;
  getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
  return ntohs(s.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&s)->sin_port
                                      : reinterpret_cast<sockaddr_in6*>(&s)->sin6_port);
}

inline UniqueFd bound_socket(int family, int type, std::uint16_t port = 0) {
  UniqueFd fd(socket(family, type | SOCK_CLOEXEC, 0));
  const Endpoint e = Endpoint::loopback(family, port);
  if (bind(fd.get(), e.get(), e.length) != 0) ADD_FAILURE() << "bind failed";
  return fd;
}

// Internet checksum over a buffer plus a starting sum.
inline std::uint16_t internet_checksum(const std::uint8_t* data, std::size_t size, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < size; i += 2) sum += std::uint32_t(data[i] << 8 | data[i + 1]);
  if (size % 2 != 0) sum += std::uint32_t(data[size - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// Recomputes the TCP or UDP checksum of a whole IPv4/IPv6 packet in place
// (and the IPv4 header checksum).
inline void fix_checksums(std::vector<std::uint8_t>& p) {
  std::uint32_t pseudo = 0;
  std::size_t l4 = 0;
  std::uint8_t protocol = 0;
  auto add_words = [&](std::size_t from, std::size_t count) {
    for (std::size_t i = from; i < from + count; i += 2) pseudo += std::uint32_t(p[i] << 8 | p[i + 1]);
  };
  if (p[0] >> 4 == 4) {
    l4 = std::size_t(p[0] & 0x0f) * 4;
    protocol = p[9];
    p[10] = p[11] = 0;
    const std::uint16_t ip = internet_checksum(p.data(), l4);
    p[10] = std::uint8_t(ip >> 8);
    p[11] = std::uint8_t(ip);
    add_words(12, 8);
  } else {
    l4 = 40;
    protocol = p[6];
    add_words(8, 32);
  }
  const std::size_t l4_len = p.size() - l4;
  pseudo += protocol;
  pseudo += std::uint32_t(l4_len);
  const std::size_t field = l4 + (protocol == IPPROTO_TCP ? 16 : 6);
  p[field] = p[field + 1] = 0;
  std::uint16_t sum = internet_checksum(p.data() + l4, l4_len, pseudo);
  if (protocol == IPPROTO_UDP && sum == 0) sum = 0xffff;
  p[field] = std::uint8_t(sum >> 8);
  p[field + 1] = std::uint8_t(sum);
}

// One datagram with its ancillary data, read without blocking.
struct Ancillary {
  int level = 0, type = 0;
  std::vector<std::uint8_t> bytes;
  template <typename T>
  T as() const {
    T value{};
    std::memcpy(&value, bytes.data(), std::min(sizeof value, bytes.size()));
    return value;
  }
};
struct Datagram {
  std::vector<std::uint8_t> data;
  std::vector<Ancillary> ancillary;
  const Ancillary* find(int level, int type) const {
    for (const Ancillary& a : ancillary) {
      if (a.level == level && a.type == type) return &a;
    }
    return nullptr;
  }
};

inline std::optional<Datagram> receive_datagram(int fd) {
  std::uint8_t buffer[65536];
  alignas(cmsghdr) char control[512];
  iovec iov{buffer, sizeof buffer};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t got = recvmsg(fd, &message, MSG_DONTWAIT);
  if (got < 0) return std::nullopt;
  Datagram d;
  d.data.assign(buffer, buffer + got);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wsign-conversion"
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    const auto* first = static_cast<const std::uint8_t*>(CMSG_DATA(c));
    const std::size_t size = c->cmsg_len - CMSG_LEN(0);
    d.ancillary.push_back({c->cmsg_level, c->cmsg_type, std::vector<std::uint8_t>(first, first + size)});
  }
#pragma GCC diagnostic pop
  return d;
}

// Additional network namespaces, deleted again when this goes out of scope.
class NamedNamespaces {
 public:
  explicit NamedNamespaces(const std::string& stem)
      : prefix_("nfqt-sys-" + std::to_string(getpid()) + "-" + stem) {}
  ~NamedNamespaces() {
    for (const std::string& name : names_) sh_quiet("ip netns delete " + name);
  }
  NamedNamespaces(const NamedNamespaces&) = delete;
  NamedNamespaces& operator=(const NamedNamespaces&) = delete;

  // Creates the namespace `prefix-suffix` with lo up; returns its name.
  std::string add(const std::string& suffix) {
    const std::string name = prefix_ + "-" + suffix;
    names_.push_back(name);
    sh("ip netns add " + name);
    sh("ip -n " + name + " link set lo up");
    return name;
  }

 private:
  std::string prefix_;
  std::vector<std::string> names_;
};

}  // namespace nfqtrace::sys::testing
