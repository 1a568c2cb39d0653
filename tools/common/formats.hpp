// The result formats as the tools write them: each a cli::ResultConsumer
// writing one format to one destination (stdout, or an --output file).
// The formats themselves are pure functions in the output layer; here they
// meet a stream and the tool's context (the meta line, the directions, the
// names and AS numbers looked up so far).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "destination.hpp"
#include "nfqtrace/output/address_book.hpp"
#include "nfqtrace/output/meta.hpp"
#include "results.hpp"

namespace nfqtrace::cli {

enum class Format { text, json, atlas, warts, dot };

// "text", "json", ...; nullopt for a name that is none of them.
std::optional<Format> parse_format(std::string_view name);
std::string_view to_string(Format format);

// What every format may need beyond the results.
struct FormatContext {
  const output::Meta& meta;  // the run: tool, version, host, start, options
  const output::AddressBook* names = nullptr;  // names and AS numbers, if looked up
};

// The consumer writing `format` to `out` (which it does not own: stdout's
// writer lives as long as the tool).
std::unique_ptr<ResultConsumer> make_format(Format format, Destination& out,
                                            const FormatContext& context);

// One --output: the format and the file it goes to.
struct OutputSpec {
  Format format;
  std::string path;
};

// Adds to `results` the main format on `out` (stdout; none: the tool
// prints its own), then each --output file's. A one-line error when a file
// cannot be opened.
std::optional<std::string> add_outputs(Results& results, std::optional<Format> main,
                                       Destination& out,
                                       const std::vector<OutputSpec>& files,
                                       const FormatContext& context);

}  // namespace nfqtrace::cli
