#include "command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>

#include "nfqtrace/sys/fd.hpp"

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace nfqtrace::sys {
namespace {

// The helpers answer in milliseconds; only a wedged one (say, waiting for a
// lock forever) takes this long.
constexpr auto kTimeout = std::chrono::seconds(30);

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

struct Pipe {
  UniqueFd read, write;
};

Result<Pipe> make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) return Error::from_errno("pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Feeding a child that exited early must give us EPIPE, not kill us: SIGPIPE
// is blocked in this thread while we write (a write's SIGPIPE goes to the
// writing thread) and the one our write raised is swallowed afterwards.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    if (raised_ && !was_pending_) {
      const timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void note_epipe() { raised_ = true; }

 private:
  sigset_t pipe_{}, old_{};
  bool was_pending_ = false, raised_ = false;
};

Result<pid_t> spawn(const std::string& path, const std::vector<std::string>& argv, int in, int out,
                    int err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err, STDERR_FILENO);
  // Sockets, queues and the like of ours stay out of the child, even those
  // opened without O_CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  // The child starts with a clean signal state whatever ours is.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, static_cast<short>(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Error::from_errno("cannot run " + path, rc);
  return pid;
}

int reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// One end of a pipe to the child, and what flows through it.
struct Stream {
  UniqueFd* fd;
  short events;
  std::string* sink;  // null for the child's stdin
};

}  // namespace

std::optional<std::string> find_program(std::string_view name) {
  if (name.find('/') != std::string_view::npos) {
    std::string path(name);
    if (is_executable_file(path)) return path;
    return std::nullopt;
  }
  const char* env_path = std::getenv("PATH");
  std::string dirs = env_path != nullptr ? env_path : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    if (end > start) {
      std::string candidate = dirs.substr(start, end - start) + "/" + std::string(name);
      if (is_executable_file(candidate)) return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

Result<CommandOutput> run_command(const std::string& path, const std::vector<std::string>& argv,
                                  std::string_view input) {
  auto in = make_pipe();
  if (!in) return in.error();
  auto out = make_pipe();
  if (!out) return out.error();
  auto err = make_pipe();
  if (!err) return err.error();

  SigpipeBlock sigpipe_block;
  auto pid = spawn(path, argv, in->read.get(), out->write.get(), err->write.get());
  if (!pid) return pid.error();
  in->read.reset();
  out->write.reset();
  err->write.reset();

  CommandOutput result;
  UniqueFd to_child = std::move(in->write), from_out = std::move(out->read),
           from_err = std::move(err->read);
  if (input.empty()) to_child.reset();
  for (const UniqueFd* fd : {&to_child, &from_out, &from_err}) {
    if (fd->valid()) set_nonblocking(fd->get());
  }
  std::array<Stream, 3> streams{{{&to_child, POLLOUT, nullptr},
                                 {&from_out, POLLIN, &result.out},
                                 {&from_err, POLLIN, &result.err}}};

  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  std::size_t written = 0;
  std::array<char, 4096> buffer{};
  for (;;) {
    std::array<pollfd, 3> polled{};
    std::array<Stream*, 3> which{};
    nfds_t count = 0;
    for (Stream& s : streams) {
      if (!s.fd->valid()) continue;
      polled[count] = pollfd{s.fd->get(), s.events, 0};
      which[count] = &s;
      ++count;
    }
    if (count == 0) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(*pid, SIGKILL);
      reap(*pid);
      return Error{argv.front() + ": no answer after " + std::to_string(kTimeout.count()) +
                   " s, killed"};
    }
    if (::poll(polled.data(), count, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::kill(*pid, SIGKILL);
      reap(*pid);
      return Error::from_errno("poll", saved);
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (polled[i].revents == 0) continue;
      Stream& s = *which[i];
      if (s.sink == nullptr) {
        const std::string_view rest = input.substr(written);
        const ssize_t n = ::write(s.fd->get(), rest.data(), rest.size());
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 && errno == EPIPE) sigpipe_block.note_epipe();
        // The child stopped reading (exited, or closed stdin): its exit code
        // and stderr tell why.
        if (written == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) s.fd->reset();
      } else {
        const ssize_t n = ::read(s.fd->get(), buffer.data(), buffer.size());
        if (n > 0) s.sink->append(buffer.data(), static_cast<std::size_t>(n));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) s.fd->reset();
      }
    }
  }
  result.exit_code = reap(*pid);
  return result;
}

std::string first_error_line(std::string_view err) {
  std::string first_warning;
  std::size_t start = 0;
  while (start < err.size()) {
    std::size_t end = err.find('\n', start);
    if (end == std::string_view::npos) end = err.size();
    std::string_view line = err.substr(start, end - start);
    start = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    const bool warning = line.starts_with("Warning") || line.starts_with("# Warning");
    if (!warning) return std::string(line);
    if (first_warning.empty()) first_warning = line;
  }
  return first_warning;
}

std::string describe_failure(std::string_view command, const CommandOutput& output) {
  std::string line = first_error_line(output.err);
  if (line.empty()) line = "exit code " + std::to_string(output.exit_code);
  return std::string(command) + " failed: " + line;
}

}  // namespace nfqtrace::sys
