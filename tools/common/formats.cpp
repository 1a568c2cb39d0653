#include "formats.hpp"

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "nfqtrace/output/atlas.hpp"
#include "nfqtrace/output/dot.hpp"
#include "nfqtrace/output/format.hpp"
#include "nfqtrace/output/warts.hpp"
#include "nfqtrace/sys/clock.hpp"

namespace nfqtrace::cli {
namespace {

constexpr std::array<std::pair<Format, std::string_view>, 5> format_names{{
    {Format::text, "text"},
    {Format::json, "json"},
    {Format::atlas, "atlas"},
    {Format::warts, "warts"},
    {Format::dot, "dot"},
}};

std::string_view direction_name(Direction d) {
  return d == Direction::forward ? "forward" : d == Direction::reverse ? "reverse" : "";
}

// A traceroute-like table per trace, path changes in a line.
class TextFormat final : public ResultConsumer {
 public:
  TextFormat(Destination& out, const FormatContext& context) : out_(out), names_(context.names) {}
  void trace(const core::TraceResult& trace, Direction direction) override {
    std::string text;
    if (direction != Direction::none) text = std::string(direction_name(direction)) + " ";
    out_.write(text + output::trace_text(trace, names_) + "\n");
  }
  void path_change(const core::PathChange& change) override {
    out_.write(output::path_change_text(change) + "\n");
  }

 private:
  Destination& out_;
  const output::AddressBook* names_;
};

// JSON Lines: the meta line first, then every hop as it comes, every trace
// and path change as it ends.
class JsonFormat final : public ResultConsumer {
 public:
  JsonFormat(Destination& out, const FormatContext& context) : out_(out), names_(context.names) {
    out_.write(output::meta_json(context.meta).dump() + "\n");
  }
  void hop(const core::HopEvent& hop, Direction direction) override {
    auto j = output::hop_json(hop, names_);
    if (direction != Direction::none) j["direction"] = direction_name(direction);
    out_.write(j.dump() + "\n");
  }
  void trace(const core::TraceResult& trace, Direction direction) override {
    auto j = output::trace_json(trace, names_);
    if (direction != Direction::none) j["direction"] = direction_name(direction);
    out_.write(j.dump() + "\n");
  }
  void path_change(const core::PathChange& change) override {
    out_.write(output::path_change_json(change).dump() + "\n");
  }

 private:
  Destination& out_;
  const output::AddressBook* names_;
};

// Each ended trace as a RIPE Atlas traceroute result, a line each.
class AtlasFormat final : public ResultConsumer {
 public:
  AtlasFormat(Destination& out, const FormatContext& context) : out_(out) {
    atlas_.version = context.meta.version;
  }
  void trace(const core::TraceResult& trace, Direction) override {
    out_.write(output::atlas_json(trace, atlas_).dump() + "\n");
  }

 private:
  Destination& out_;
  output::AtlasContext atlas_;
};

// scamper's warts: the list and cycle records first, a record per ended
// trace, the cycle's end when the run is over.
class WartsFormat final : public ResultConsumer {
 public:
  WartsFormat(Destination& out, const FormatContext& context)
      : out_(out),
        warts_(output::WartsFileInfo{"nfqtrace", context.meta.tool + " " + context.meta.version,
                                     context.meta.host, context.meta.start}) {
    write(warts_.file_start());
  }
  void trace(const core::TraceResult& trace, Direction) override { write(warts_.trace(trace)); }
  void finish() override { write(warts_.file_end(sys::now().wall)); }

 private:
  void write(const std::vector<std::uint8_t>& bytes) {
    out_.write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  Destination& out_;
  output::WartsWriter warts_;
};

// The traced paths as one Graphviz graph, written when the run is over: the
// latest trace of each flow and direction, for the most recent flows.
class DotFormat final : public ResultConsumer {
 public:
  DotFormat(Destination& out, const FormatContext& context) : out_(out), names_(context.names) {}
  void trace(const core::TraceResult& trace, Direction direction) override {
    const std::string name(direction_name(direction));
    auto same = [&](const output::DotTrace& t) {
      return t.trace.flow == trace.flow && t.direction == name;
    };
    std::erase_if(latest_, same);
    if (latest_.size() == max_traces) latest_.erase(latest_.begin());
    latest_.push_back(output::DotTrace{trace, name});
  }
  void finish() override { out_.write(output::dot_graph(latest_, names_)); }

 private:
  // A picture of more paths than this is no longer read.
  static constexpr std::size_t max_traces = 1000;
  Destination& out_;
  const output::AddressBook* names_;
  std::vector<output::DotTrace> latest_;  // oldest first
};

// A format that owns its file.
class FileFormat final : public ResultConsumer {
 public:
  FileFormat(std::unique_ptr<Destination> file, Format format, const FormatContext& context)
      : file_(std::move(file)), format_(make_format(format, *file_, context)) {}
  void hop(const core::HopEvent& hop, Direction direction) override { format_->hop(hop, direction); }
  void trace(const core::TraceResult& trace, Direction direction) override {
    format_->trace(trace, direction);
  }
  void path_change(const core::PathChange& change) override { format_->path_change(change); }
  void finish() override { format_->finish(); }

 private:
  std::unique_ptr<Destination> file_;
  std::unique_ptr<ResultConsumer> format_;  // after file_: gone before it
};

}  // namespace

std::optional<Format> parse_format(std::string_view name) {
  for (const auto& [format, format_name] : format_names)
    if (format_name == name) return format;
  return std::nullopt;
}

std::string_view to_string(Format format) {
  for (const auto& [f, name] : format_names)
    if (f == format) return name;
  return "?";
}

std::unique_ptr<ResultConsumer> make_format(Format format, Destination& out,
                                            const FormatContext& context) {
  switch (format) {
    case Format::text:
      return std::make_unique<TextFormat>(out, context);
    case Format::json:
      return std::make_unique<JsonFormat>(out, context);
    case Format::atlas:
      return std::make_unique<AtlasFormat>(out, context);
    case Format::warts:
      return std::make_unique<WartsFormat>(out, context);
    case Format::dot:
      return std::make_unique<DotFormat>(out, context);
  }
  return nullptr;
}

std::optional<std::string> add_outputs(Results& results, std::optional<Format> main,
                                       Destination& out, const std::vector<OutputSpec>& files,
                                       const FormatContext& context) {
  if (main) {
    auto format = make_format(*main, out, context);
    if (!format) return "--format " + std::string(to_string(*main)) + ": not built in";
    results.add(std::move(format));
  }
  for (const OutputSpec& spec : files) {
    std::string error;
    auto file = FileDestination::open(spec.path, error);
    if (!file) return "--output: " + error;
    results.add(std::make_unique<FileFormat>(std::move(file), spec.format, context));
  }
  return std::nullopt;
}

}  // namespace nfqtrace::cli
