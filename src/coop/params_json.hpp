// TraceRequest <-> the "params" object of the hello messages (private to
// src/coop: the encoder and the decoder share the field names here).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "nfqtrace/coop/message.hpp"

namespace nfqtrace::coop {

nlohmann::json params_to_json(const TraceRequest& params);
// Absent and null fields stay unset; unknown fields are ignored. On a wrong
// type or value, the error names the field ("params.maxttl: must be ...").
Expected<TraceRequest, std::string> params_from_json(const nlohmann::json& params);

}  // namespace nfqtrace::coop
