// Graphviz DOT text of traced paths.
#include "nfqtrace/output/dot.hpp"

#include <fmt/format.h>

#include <map>
#include <set>
#include <tuple>

#include "nfqtrace/output/format.hpp"

namespace nfqtrace::output {

namespace {

// A DOT double-quoted string: quotes and backslashes escaped; "\n" in
// `text` stays a line break of the label.
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string address_label(const wire::Address& addr, const AddressBook* book) {
  std::string label = addr.to_string();
  const AddressInfo* info = book != nullptr ? book->find(addr) : nullptr;
  if (info == nullptr) return label;
  if (!info->name.empty()) label += "\n" + info->name;
  if (info->asn) {
    label += fmt::format("\nAS{}", *info->asn);
    if (!info->as_name.empty()) label += " " + info->as_name;
  }
  return label;
}

std::string edge_colour(const std::string& direction) {
  if (direction == "forward") return "blue";
  if (direction == "reverse") return "red";
  return "black";
}

struct Graph {
  const AddressBook* book;
  // Node id -> its attributes; std::map keeps the text stable.
  std::map<std::string, std::string> nodes;
  // (from, to, direction, dashed) -> the lowest RTT seen on it, in ms
  // (< 0: none). Dashed: from the last hop to a destination not reached.
  std::map<std::tuple<std::string, std::string, std::string, bool>, double> edges;
  bool directions = false;

  std::string address_node(const wire::Address& addr, bool endpoint) {
    const std::string id = addr.to_string();
    std::string& attributes = nodes[id];
    // An address that is some trace's source or destination stays a box.
    if (attributes.empty() || endpoint) {
      attributes = fmt::format("label={}{}", quoted(address_label(addr, book)), endpoint ? ", shape=box" : "");
    }
    return id;
  }

  void edge(const std::string& from, const std::string& to, const std::string& direction, double rtt_ms,
            bool dashed = false) {
    const auto key = std::make_tuple(from, to, direction, dashed);
    const auto [it, added] = edges.emplace(key, rtt_ms);
    if (!added && rtt_ms >= 0 && (it->second < 0 || rtt_ms < it->second)) it->second = rtt_ms;
  }

  void add(const DotTrace& dt) {
    const core::TraceResult& t = dt.trace;
    if (!dt.direction.empty()) directions = true;
    std::set<std::string> previous = {address_node(t.flow.src, true)};
    const std::string destination = address_node(t.flow.dst, true);
    for (const core::Hop& hop : t.hops) {
      // The hop's addresses, each with its lowest RTT.
      std::map<std::string, double> here;
      for (const core::Reply& r : hop.replies) {
        const std::string id = address_node(r.addr, r.addr == t.flow.dst);
        const double ms = to_ms(r.rtt);
        const auto [it, added] = here.emplace(id, ms);
        if (!added && ms < it->second) it->second = ms;
      }
      if (here.empty()) {
        const std::string id = fmt::format("* {} round {} ttl {}{}", flow_text(t.flow), t.round, hop.ttl,
                                           dt.direction.empty() ? "" : " " + dt.direction);
        nodes[id] = "label=\"*\", shape=plaintext";
        here.emplace(id, -1.0);
      }
      for (const std::string& from : previous)
        for (const auto& [to, ms] : here) edge(from, to, dt.direction, ms);
      previous.clear();
      for (const auto& [id, ms] : here) previous.insert(id);
    }
    // Not reached: the destination is drawn, the way there left open.
    if (!t.reached)
      for (const std::string& from : previous) edge(from, destination, dt.direction, -1, true);
  }

  std::string text() const {
    std::string out = "digraph nfqtrace {\n  rankdir=LR;\n  node [fontsize=10];\n  edge [fontsize=9];\n";
    if (directions) out += "  label=\"forward (client to server): blue, reverse (server to client): red\";\n";
    for (const auto& [id, attributes] : nodes) out += fmt::format("  {} [{}];\n", quoted(id), attributes);
    for (const auto& [key, ms] : edges) {
      const auto& [from, to, direction, dashed] = key;
      std::string attributes = fmt::format("color={}", edge_colour(direction));
      if (ms >= 0) attributes += fmt::format(", label=\"{:.3f} ms\"", ms);
      if (dashed) attributes += ", style=dashed";
      out += fmt::format("  {} -> {} [{}];\n", quoted(from), quoted(to), attributes);
    }
    return out + "}\n";
  }
};

}  // namespace

std::string dot_graph(const std::vector<DotTrace>& traces, const AddressBook* book) {
  Graph graph{book, {}, {}, false};
  for (const DotTrace& t : traces) graph.add(t);
  return graph.text();
}

}  // namespace nfqtrace::output
