// A NAT between the two ends of a cooperating connection: the client knows
// its own address and port, the server knows what it sees. Where they
// differ, both ends' traces of the connection say so, and the reverse
// trace ends at the NAT's public address (the address the server sees).
#pragma once

#include <optional>

#include "nfqtrace/coop/message.hpp"
#include "nfqtrace/core/result.hpp"

namespace nfqtrace::coop {

// Adds "client_sees"/"server_sees" to the trace's `nat` where the two
// differ; leaves it as it is otherwise.
void note_nat(core::TraceResult& trace, const Endpoint& client_sees, const Endpoint& server_sees);

}  // namespace nfqtrace::coop
