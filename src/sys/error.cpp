#include "nfqtrace/sys/error.hpp"

#include <cstring>

namespace nfqtrace::sys {

Error Error::from_errno(std::string call, int err) { return Error{std::move(call), err}; }

std::string Error::message() const {
  if (code == 0) return what;
  return what + ": " + std::strerror(code);
}

}  // namespace nfqtrace::sys
