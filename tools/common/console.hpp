// Writing results and diagnostics: stdout (line by line, flushed) and the
// optional --log-file; one-line errors on stderr.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "nfqtrace/sys/error.hpp"

namespace nfqtrace::cli {

class ResultWriter {
 public:
  // Opens --log-file for appending; nullopt and a message on failure.
  static std::optional<ResultWriter> open(const std::optional<std::string>& log_file,
                                          std::string& error);
  void write(const std::string& text);

 private:
  explicit ResultWriter(std::FILE* log) : log_(log, &std::fclose) {}
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> log_;
};

// The error, with a hint when it is a matter of privileges.
std::string explain(const sys::Error& e);

}  // namespace nfqtrace::cli
