// Errors at OS boundaries carry the failing call and errno; constructors that
// can fail are factory functions returning Result.
#pragma once

#include <cerrno>
#include <string>

#include "nfqtrace/base/expected.hpp"

namespace nfqtrace::sys {

struct Error {
  std::string what;  // a one-line explanation for the user
  int code = 0;      // errno, when there is one

  // "call: strerror(code)" style message, e.g. Error::from_errno("bind queue 0").
  static Error from_errno(std::string call, int err = errno);
  std::string message() const;
};

template <typename T>
using Result = Expected<T, Error>;

// Result for calls that return nothing.
using Status = Result<Ok>;

}  // namespace nfqtrace::sys
