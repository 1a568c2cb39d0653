// Errors at OS boundaries carry the failing call and errno; constructors that
// can fail are factory functions returning Result.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace nfqtrace::sys {

struct Error {
  std::string what;  // a one-line explanation for the user
  int code = 0;      // errno, when there is one

  // "call: strerror(code)" style message, e.g. Error::from_errno("bind queue 0").
  static Error from_errno(std::string call, int err = errno);
  std::string message() const;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result for calls that return nothing.
struct Ok {};
using Status = Result<Ok>;

}  // namespace nfqtrace::sys
