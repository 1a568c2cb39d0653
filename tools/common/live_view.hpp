// The full-screen live view (mtr's, for live connections): the hop table of
// one flow at a time, updated as replies arrive. Keys: up/down (or k/j)
// move between flows, p pauses the display, n switches names off and on,
// q quits as SIGINT does. ncurses, on the terminal of stdout; the tools use
// it when stdout is a terminal and no --format was asked for, or --live.
#pragma once

#include <functional>
#include <memory>

#include "live_model.hpp"
#include "nfqtrace/sys/event_loop.hpp"
#include "nfqtrace/sys/timer.hpp"
#include "results.hpp"

namespace nfqtrace::cli {

class LiveView final : public ResultConsumer {
 public:
  // Takes over the terminal; `quit` runs when q is pressed. nullptr and
  // `error` set when the terminal cannot be used.
  static std::unique_ptr<LiveView> open(sys::EventLoop& loop, const output::AddressBook* names,
                                        std::function<void()> quit, std::string& error);
  ~LiveView() override;  // gives the terminal back

  void hop(const core::HopEvent& hop, Direction direction) override;
  void trace(const core::TraceResult& trace, Direction direction) override;
  void path_change(const core::PathChange& change) override;
  void finish() override;  // the terminal back, before the summary is printed

 private:
  LiveView(sys::EventLoop& loop, sys::Timer timer, const output::AddressBook* names,
           std::function<void()> quit);
  void on_keys();
  void on_tick();
  void draw();

  sys::EventLoop& loop_;
  sys::Timer timer_;  // redraws: at most a few times a second, whatever the rate of results
  const output::AddressBook* names_;
  std::function<void()> quit_;
  LiveModel model_;
  core::Duration last_draw_{0};
  std::size_t selected_ = 0;
  bool paused_ = false, show_names_ = true, dirty_ = true, open_ = false;
};

}  // namespace nfqtrace::cli
