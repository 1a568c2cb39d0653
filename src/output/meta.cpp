#include "nfqtrace/output/meta.hpp"

#include "nfqtrace/output/format.hpp"

namespace nfqtrace::output {

nlohmann::json meta_json(const Meta& meta) {
  return nlohmann::json{{"type", "meta"},
                        {"tool", meta.tool},
                        {"version", meta.version},
                        {"host", meta.host},
                        {"run_id", meta.run_id},
                        {"start", rfc3339(meta.start)},
                        {"options", meta.options.is_null() ? nlohmann::json::object() : meta.options}};
}

}  // namespace nfqtrace::output
