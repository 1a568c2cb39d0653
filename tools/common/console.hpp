// Writing results and diagnostics: stdout (line by line, flushed) and the
// optional --log-file; one-line errors on stderr.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "destination.hpp"
#include "nfqtrace/sys/error.hpp"

namespace nfqtrace::cli {

class ResultWriter final : public Destination {
 public:
  // Opens --log-file for appending; nullopt and a message on failure.
  static std::optional<ResultWriter> open(const std::optional<std::string>& log_file,
                                          std::string& error);
  void write(std::string_view text) override;

 private:
  explicit ResultWriter(std::FILE* log) : log_(log, &std::fclose) {}
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> log_;
};

// The error, with a hint when it is a matter of privileges.
std::string explain(const sys::Error& e);

// A tool's one-line errors on stderr, "<tool>: <message>", a sys::Error
// explained. Returns the exit status given, so that main() can end with
// `return fail(...)`.
class ErrorReporter {
 public:
  explicit ErrorReporter(std::string tool) : tool_(std::move(tool)) {}
  int operator()(const std::string& message, int status = 1) const;
  int operator()(const sys::Error& error, int status = 1) const;

 private:
  std::string tool_;
};

}  // namespace nfqtrace::cli
