#include "destination.hpp"

#include <cerrno>
#include <cstring>

namespace nfqtrace::cli {

std::unique_ptr<FileDestination> FileDestination::open(const std::string& path, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<FileDestination>(new FileDestination(f));
}

void FileDestination::write(std::string_view bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), file_.get());
  std::fflush(file_.get());
}

}  // namespace nfqtrace::cli
