// Where a result format's bytes go: stdout (cli::ResultWriter, with the
// --log-file copy) or an --output file.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

namespace nfqtrace::cli {

class Destination {
 public:
  virtual ~Destination() = default;
  virtual void write(std::string_view bytes) = 0;
};

// An --output file, created or truncated; written through and flushed, so
// that a reader (or a crash) sees every result written so far.
class FileDestination final : public Destination {
 public:
  // nullptr and `error` set when it cannot be opened.
  static std::unique_ptr<FileDestination> open(const std::string& path, std::string& error);
  void write(std::string_view bytes) override;

 private:
  explicit FileDestination(std::FILE* f) : file_(f, &std::fclose) {}
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
};

}  // namespace nfqtrace::cli
