#include "live_view.hpp"

#include <curses.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "nfqtrace/sys/clock.hpp"

namespace nfqtrace::cli {
namespace {

// Redraws come at most this often; a new result between them only marks
// the screen stale.
constexpr auto redraw_every = std::chrono::milliseconds(200);

std::string ms_cell(const std::optional<double>& ms) {
  return ms ? fmt::format("{:7.1f}", *ms) : std::string(7, ' ');
}

}  // namespace

std::unique_ptr<LiveView> LiveView::open(sys::EventLoop& loop, const output::AddressBook* names,
                                         std::function<void()> quit, std::string& error) {
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
    error = "--live needs a terminal on stdin and stdout";
    return nullptr;
  }
  auto timer = sys::Timer::create();
  if (!timer) {
    error = timer.error().message();
    return nullptr;
  }
  std::unique_ptr<LiveView> view(new LiveView(loop, std::move(*timer), names, std::move(quit)));
  if (!initscr()) {
    error = "cannot use the terminal (TERM?)";
    return nullptr;
  }
  view->open_ = true;
  cbreak();
  noecho();
  nodelay(stdscr, TRUE);
  keypad(stdscr, TRUE);
  curs_set(0);
  LiveView* self = view.get();
  if (auto s = loop.watch(STDIN_FILENO, [self] { self->on_keys(); }); !s) {
    error = s.error().message();
    return nullptr;
  }
  if (auto s = loop.watch(view->timer_.fd(), [self] {
        if (self->timer_.expired()) self->on_tick();
      });
      !s) {
    error = s.error().message();
    return nullptr;
  }
  view->draw();
  return view;
}

LiveView::LiveView(sys::EventLoop& loop, sys::Timer timer, const output::AddressBook* names,
                   std::function<void()> quit)
    : loop_(loop), timer_(std::move(timer)), names_(names), quit_(std::move(quit)) {}

LiveView::~LiveView() { finish(); }

void LiveView::finish() {
  if (!open_) return;
  open_ = false;
  loop_.unwatch(STDIN_FILENO);
  loop_.unwatch(timer_.fd());
  endwin();
}

void LiveView::hop(const core::HopEvent& hop, Direction direction) {
  model_.hop(hop, direction);
  on_tick();
}

void LiveView::trace(const core::TraceResult& trace, Direction direction) {
  model_.trace(trace, direction);
  on_tick();
}

void LiveView::path_change(const core::PathChange& change) {
  model_.path_change(change);
  on_tick();
}

// Marks the screen stale and draws it if the last redraw is long enough ago.
void LiveView::on_tick() {
  dirty_ = true;
  if (!open_ || paused_) return;
  const core::Duration now = sys::now().mono;
  if (now - last_draw_ < redraw_every) {
    (void)timer_.set(last_draw_ + redraw_every);
    return;
  }
  draw();
}

void LiveView::on_keys() {
  for (int key = getch(); key != ERR; key = getch()) {
    switch (key) {
      case 'q':
      case 'Q':
        quit_();
        return;
      case 'p':
      case 'P':
      case ' ':
        paused_ = !paused_;
        break;
      case 'n':
      case 'N':
        show_names_ = !show_names_;
        break;
      case KEY_DOWN:
      case 'j':
        if (selected_ + 1 < model_.flows()) ++selected_;
        break;
      case KEY_UP:
      case 'k':
        if (selected_ > 0) --selected_;
        break;
      default:
        break;
    }
  }
  draw();
}

void LiveView::draw() {
  if (!open_) return;
  dirty_ = false;
  last_draw_ = sys::now().mono;
  // Repainted whole: a diagnostic on stderr (the same terminal) may have
  // written over it.
  clearok(stdscr, TRUE);
  erase();
  const std::size_t flows = model_.flows();
  mvprintw(0, 0, "nfqtrace live   flow %zu of %zu   keys: up/down flows, p %s, n names %s, q quit",
           flows == 0 ? 0 : selected_ + 1, flows, paused_ ? "resume" : "pause",
           show_names_ ? "off" : "on");
  if (flows == 0) {
    mvprintw(2, 0, "waiting for the first reply of a traced connection...");
    refresh();
    return;
  }
  const LiveModel::FlowView view = model_.view(selected_, names_, show_names_);
  attron(A_BOLD);
  mvprintw(1, 0, "%s", view.title.c_str());
  mvprintw(3, 0, "%3s  %-40s %-9s %5s %5s %6s %7s %7s %7s %7s  %s", "TTL", "Host", "AS", "Snt",
           "Rcv", "Loss%", "Last", "Avg", "Best", "Wrst", "Notes");
  attroff(A_BOLD);
  int line = 4;
  for (const LiveModel::Row& r : view.rows) {
    if (line >= LINES) break;
    const std::string loss = r.loss_pct ? fmt::format("{:5.1f}%", *r.loss_pct) : "     -";
    const std::string text = fmt::format(
        "{:3}  {:<40} {:<9} {:5} {:5} {:>6} {} {} {} {}  {}", r.ttl, r.host, r.as, r.sent,
        r.answered, loss, ms_cell(r.last_ms), ms_cell(r.avg_ms), ms_cell(r.best_ms),
        ms_cell(r.worst_ms), r.notes);
    const bool highlight = r.notes.find("PATH CHANGED") != std::string::npos;
    if (highlight) attron(A_REVERSE);
    mvaddnstr(line++, 0, text.c_str(), COLS);
    if (highlight) attroff(A_REVERSE);
  }
  refresh();
}

}  // namespace nfqtrace::cli
