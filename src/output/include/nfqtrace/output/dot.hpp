// The traced paths as a Graphviz graph (the DOT language): one node per
// address (label: the address, its name and AS when the address book knows
// them), the traces' sources and destinations as boxes, an edge from each
// TTL's answering addresses to the next TTL's labelled with the later
// hop's RTT, and a "*" node for each silent TTL (one per trace and TTL, so
// two traces' silences are never taken for one router). Every trace given
// goes into one picture: the same address is the same node whichever trace
// or direction met it, so where several flows, or the two directions of a
// cooperating client's connection, share routers the paths merge, and
// where they differ (asymmetry) they part. Edges are coloured by direction.
#pragma once

#include <string>
#include <vector>

#include "nfqtrace/core/result.hpp"
#include "nfqtrace/output/address_book.hpp"

namespace nfqtrace::output {

struct DotTrace {
  core::TraceResult trace;
  // "forward" or "reverse" for nfqtrace-client's two directions; empty for
  // nfqtrace's own traces.
  std::string direction;
};

// A `digraph nfqtrace { ... }`, ending in a newline. `book` may be nullptr.
std::string dot_graph(const std::vector<DotTrace>& traces, const AddressBook* book);

}  // namespace nfqtrace::output
