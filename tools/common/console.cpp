#include "console.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace nfqtrace::cli {

std::optional<ResultWriter> ResultWriter::open(const std::optional<std::string>& log_file,
                                               std::string& error) {
  if (!log_file) return ResultWriter(nullptr);
  std::FILE* f = std::fopen(log_file->c_str(), "a");
  if (!f) {
    error = "--log-file " + *log_file + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return ResultWriter(f);
}

void ResultWriter::write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (log_) {
    std::fwrite(text.data(), 1, text.size(), log_.get());
    std::fflush(log_.get());
  }
}

std::string explain(const sys::Error& e) {
  std::string msg = e.message();
  if (e.code == EPERM || e.code == EACCES)
    msg += " (not enough privileges: run as root, or with CAP_NET_ADMIN and CAP_NET_RAW)";
  return msg;
}

int ErrorReporter::operator()(const std::string& message, int status) const {
  fmt::print(stderr, "{}: {}\n", tool_, message);
  return status;
}

int ErrorReporter::operator()(const sys::Error& error, int status) const {
  return (*this)(explain(error), status);
}

}  // namespace nfqtrace::cli
