// A value or the reason there is none: the one result type of every layer.
// Parsers of outside input return Expected<T, wire::ParseError>, OS adapters
// Expected<T, sys::Error>, the protocol decoder Expected<Message,
// DecodeError>; nothing on a hot path throws.
//
// std::expected (C++23) is not built by clang 14 with Debian's libstdc++,
// and Debian 12 packages no tl::expected: this is the small part we use.
#pragma once

#include <concepts>
#include <type_traits>
#include <utility>
#include <variant>

namespace nfqtrace {

// The value of an operation that returns nothing.
struct Ok {};

// An error, said explicitly: needed only where the value type could also be
// made from it (Expected<std::string, std::string>).
template <typename E>
struct Unexpected {
  E error;
};
template <typename E>
Unexpected<std::decay_t<E>> unexpected(E&& error) {
  return {std::forward<E>(error)};
}

template <typename T, typename E>
class [[nodiscard]] Expected {
 public:
  using value_type = T;
  using error_type = E;

  // Implicit on purpose, so that a function returns either `value` or
  // `error`. What converts to T is a value, even where E could be made
  // from it too.
  template <typename U = T>
    requires(std::constructible_from<T, U &&> &&
             !std::same_as<std::remove_cvref_t<U>, Expected> &&
             !std::same_as<std::remove_cvref_t<U>, Unexpected<E>>)
  Expected(U&& value)  // NOLINT(google-explicit-constructor)
      : v_(std::in_place_index<0>, std::forward<U>(value)) {}
  template <typename G = E>
    requires(std::constructible_from<E, G &&> && !std::constructible_from<T, G &&> &&
             !std::same_as<std::remove_cvref_t<G>, Expected>)
  Expected(G&& error)  // NOLINT(google-explicit-constructor)
      : v_(std::in_place_index<1>, std::forward<G>(error)) {}
  Expected(Unexpected<E> error)  // NOLINT(google-explicit-constructor)
      : v_(std::in_place_index<1>, std::move(error.error)) {}

  bool has_value() const { return v_.index() == 0; }
  bool ok() const { return has_value(); }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, E> v_;
};

}  // namespace nfqtrace
