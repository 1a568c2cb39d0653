// What the live view shows, kept apart from the terminal: per flow (and
// direction), per TTL, mtr's columns over every round so far. Fed the
// results as they come; read as rows of text. No curses here, so it is
// tested like any other code.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nfqtrace/output/address_book.hpp"
#include "results.hpp"

namespace nfqtrace::cli {

class LiveModel {
 public:
  void hop(const core::HopEvent& hop, Direction direction);
  void trace(const core::TraceResult& trace, Direction direction);
  void path_change(const core::PathChange& change);

  struct Row {
    std::uint8_t ttl = 0;
    std::string host;  // "name (addr)", "addr", "?" (nothing yet) or "*" (silent)
    std::string as;    // "AS64500", or empty
    std::uint32_t sent = 0, answered = 0;
    std::optional<double> loss_pct;  // of the probes of ended rounds
    std::optional<double> last_ms, avg_ms, best_ms, worst_ms;
    std::string notes;  // destination, MPLS, changed fields, path change
  };
  struct FlowView {
    std::string title;  // "10.0.0.2:41234 -> 192.0.2.7:443 forward, round 3 (tracing)"
    std::vector<Row> rows;
  };

  std::size_t flows() const { return flows_.size(); }
  // The flow at `index` (0 <= index < flows(), in order of first result),
  // with names and AS numbers from `names` (may be nullptr) when `show_names`.
  FlowView view(std::size_t index, const output::AddressBook* names, bool show_names) const;

 private:
  struct TtlStats {
    std::vector<wire::Address> addrs;  // in order of first reply
    std::uint32_t sent = 0;            // probes of ended rounds
    std::uint32_t answered = 0;        // replies of ended rounds
    std::uint32_t replies = 0;         // every reply seen, live
    double last_ms = 0, sum_ms = 0, best_ms = 0, worst_ms = 0;
    bool destination = false, mpls = false, changed_path = false;
    std::string changes;  // fields the path changed, from the latest reply
  };
  struct FlowStats {
    core::FlowKey flow;
    Direction direction = Direction::none;
    std::uint32_t round = 0;
    bool ended = false;  // its latest round has ended
    std::string last_reason;
    std::map<std::uint8_t, TtlStats> ttls;
  };
  FlowStats& flow(const core::FlowKey& key, Direction direction);

  std::vector<FlowStats> flows_;  // in order of first result
};

}  // namespace nfqtrace::cli
