// The client/server protocol as the server reads it: bytes from any client,
// split anywhere. The session must never crash, and what it queues to send
// stays bounded whatever the client says.
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

#include "nfqtrace/coop/line_reader.hpp"
#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/coop/server_session.hpp"

using namespace nfqtrace;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const char> bytes(reinterpret_cast<const char*>(data), size);

  // The codec alone, line by line.
  coop::LineReader reader;
  (void)reader.feed(bytes);
  for (const std::string& line : reader.lines()) (void)coop::decode(line);

  // A whole server session, fed in chunks with time passing.
  const core::FlowKey flow{*wire::Address::parse("10.0.9.2"), *wire::Address::parse("10.0.0.2"),
                           9000, 41000};
  core::Instant now{std::chrono::seconds(10), std::chrono::seconds(1'700'000'000)};
  coop::ServerLimits limits;
  coop::ServerSession session(limits, core::TraceParams{}, flow, now);
  std::size_t at = 0;
  while (at < size && !session.should_close()) {
    const std::size_t chunk = 1 + data[at] % 64;
    const std::size_t n = std::min(chunk, size - at);
    session.on_bytes(bytes.subspan(at, n), now);
    at += n;
    now.mono += std::chrono::milliseconds(7);
    session.on_timer(now);
    while (auto decision = session.poll()) {
      const auto* start = std::get_if<coop::StartTrace>(&*decision);
      if (!start) continue;
      const core::TraceParams& granted = start->params;
      if (granted.max_ttl > limits.max_ttl || granted.ttl_repeat > limits.max_ttl_repeat ||
          granted.repeat.has_value())
        __builtin_trap();
    }
    if (session.unsent().size() > (std::size_t{2} << 20)) __builtin_trap();
    session.sent(session.unsent().size());
  }
  return 0;
}
