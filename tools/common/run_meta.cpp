#include "run_meta.hpp"

#include <fmt/format.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "nfqtrace/base/version.hpp"
#include "nfqtrace/output/meta.hpp"
#include "nfqtrace/sys/clock.hpp"

namespace nfqtrace::cli {
namespace {

// A random (version 4) UUID, RFC 9562.
std::string random_uuid() {
  std::array<std::uint8_t, 16> b{};
  if (getrandom(b.data(), b.size(), 0) != static_cast<ssize_t>(b.size())) {
    // No entropy yet (early boot): the time still tells runs apart.
    const auto t = static_cast<std::uint64_t>(sys::now().wall.count());
    for (std::size_t i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(t >> (8 * i));
  }
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
                     "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                     b[12], b[13], b[14], b[15]);
}

std::string host_name() {
  std::array<char, HOST_NAME_MAX + 1> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "";
  return name.data();
}

// Every option given or with a default, as the command line would say it:
// flags as booleans, repeatable options as lists.
nlohmann::json options_json(const CLI::App& app) {
  nlohmann::json options = nlohmann::json::object();
  for (const CLI::Option* opt : app.get_options()) {
    const std::string& name = opt->get_name(false, true);
    if (name.empty() || name == "--help" || name == "-h" || name == "--version") continue;
    std::string key = opt->get_lnames().empty() ? name : "--" + opt->get_lnames().front();
    const auto& given = opt->results();
    if (opt->get_type_size() == 0) {
      if (!given.empty() || opt->count() > 0) options[key] = opt->count() > 0;
      continue;
    }
    if (given.size() > 1 || opt->get_expected_max() > 1) {
      options[key] = given;
    } else if (!given.empty()) {
      options[key] = given.front();
    } else if (!opt->get_default_str().empty()) {
      options[key] = opt->get_default_str();
    }
  }
  return options;
}

}  // namespace

output::Meta run_meta(const CLI::App& app, const std::string& tool) {
  output::Meta meta;
  meta.tool = tool;
  meta.version = std::string(nfqtrace::version);
  meta.host = host_name();
  meta.run_id = random_uuid();
  meta.start = sys::now().wall;
  meta.options = options_json(app);
  return meta;
}

}  // namespace nfqtrace::cli
