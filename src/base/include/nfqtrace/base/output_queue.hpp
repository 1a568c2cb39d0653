// Decisions handed out one at a time, in the order they were made: what a
// state machine's poll() returns. The storage is reused once drained, so a
// caller that drains after every event allocates nothing in steady state.
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace nfqtrace {

template <typename T>
class OutputQueue {
 public:
  // Built in place from one of T's alternatives (no T is moved on the way).
  template <typename U>
  void push(U&& item) {
    items_.emplace_back(std::forward<U>(item));
  }

  // The oldest item not yet taken. Items pushed while the caller drains
  // (an answer fed back in) come after those already waiting.
  std::optional<T> poll() {
    if (next_ == items_.size()) {
      items_.clear();
      next_ = 0;
      return std::nullopt;
    }
    return std::move(items_[next_++]);
  }

  bool empty() const { return next_ == items_.size(); }
  std::size_t size() const { return items_.size() - next_; }
  void clear() {
    items_.clear();
    next_ = 0;
  }

 private:
  std::vector<T> items_;
  std::size_t next_ = 0;
};

}  // namespace nfqtrace
