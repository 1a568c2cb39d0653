#include "nfqtrace/coop/nat_view.hpp"

#include "nfqtrace/output/format.hpp"

namespace nfqtrace::coop {

void note_nat(core::TraceResult& trace, const Endpoint& client_sees, const Endpoint& server_sees) {
  if (client_sees == server_sees) return;
  if (!trace.nat) trace.nat = core::Nat{};
  trace.nat->client_sees = output::endpoint_text(client_sees.addr, client_sees.port);
  trace.nat->server_sees = output::endpoint_text(server_sees.addr, server_sees.port);
}

}  // namespace nfqtrace::coop
