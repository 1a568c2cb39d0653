// What the tests of the two ends of a cooperating connection share: the fake
// clock, the flow the server traces, a hop of it, and reading back the lines
// a session wrote for its peer.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/wire/address.hpp"

namespace coop_sessions {

using namespace std::chrono_literals;
namespace coop = nfqtrace::coop;
namespace core = nfqtrace::core;
namespace wire = nfqtrace::wire;

inline core::Instant at(core::Duration t) { return {t, 1'795'773'600s + t}; }

inline wire::Address addr(const char* text) { return *wire::Address::parse(text); }

inline const core::FlowKey server_flow{addr("192.0.2.7"), addr("10.0.0.2"), 9000, 41234};

// One reply at `ttl`, from the same router whatever the TTL.
inline core::HopEvent hop(std::uint8_t ttl, core::FlowKey flow = server_flow) {
  core::Reply r;
  r.addr = addr("198.51.100.1");
  r.rtt = 3ms;
  r.at = at(1s);
  return core::HopEvent{flow, 1, ttl, r};
}

// server_flow's first round, from 0 to 2 s, ended for `reason`; the hop at
// ttl 1 answered.
inline core::TraceResult server_trace(core::StopReason reason) {
  core::TraceResult t;
  t.flow = server_flow;
  t.round = 1;
  t.start = at(0ms);
  t.end = at(2s);
  t.reached = reason == core::StopReason::reached;
  t.reason = reason;
  t.hops = {core::Hop{1, 3, {hop(1).reply}, {}}};
  return t;
}

// Takes what a session has to send as a caller writing everything would,
// and decodes its lines; a line that does not decode fails the test.
template <typename Session>
std::vector<coop::Message> take_messages(Session& session) {
  const std::string bytes(session.unsent());
  session.sent(bytes.size());
  EXPECT_TRUE(bytes.empty() || bytes.back() == '\n') << "only whole lines";
  std::vector<coop::Message> out;
  for (std::size_t start = 0, end; (end = bytes.find('\n', start)) != std::string::npos;
       start = end + 1) {
    const auto d = coop::decode(std::string_view(bytes).substr(start, end - start));
    if (!d) ADD_FAILURE() << d.error().reason;
    else out.push_back(*d);
  }
  return out;
}

// What a session decided since the last call, in order.
template <typename Session>
auto take_decisions(Session& session) {
  std::vector<typename decltype(session.poll())::value_type> out;
  while (auto d = session.poll()) out.push_back(std::move(*d));
  return out;
}

// The decisions of one kind.
template <typename T, typename Decision>
std::vector<T> only(const std::vector<Decision>& decisions) {
  std::vector<T> out;
  for (const Decision& d : decisions)
    if (const T* t = std::get_if<T>(&d)) out.push_back(*t);
  return out;
}

}  // namespace coop_sessions
