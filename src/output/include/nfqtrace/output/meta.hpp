// The first object of a JSON Lines stream: where, when and how the results
// that follow were made (M-Lab's traceroute archive starts its files so),
// so a file of results describes itself.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "nfqtrace/core/time.hpp"

namespace nfqtrace::output {

struct Meta {
  std::string tool;     // "nfqtrace", "nfqtrace-client", "nfqtrace-server"
  std::string version;  // the program's version
  std::string host;     // the host name
  std::string run_id;   // a UUID the program draws once a run
  core::Duration start{0};  // since the Unix epoch
  nlohmann::json options = nlohmann::json::object();  // the options in effect
};

// {"type":"meta","tool","version","host","run_id","start":"<RFC 3339>","options":{...}}
nlohmann::json meta_json(const Meta& meta);

}  // namespace nfqtrace::output
