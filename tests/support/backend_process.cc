#include "tests/support/backend_process.h"

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace lbkit::testing {
namespace {

[[noreturn]] void Fail(const std::string& message) {
  fprintf(stderr, "BackendProcess: %s\n", message.c_str());
  abort();
}

}  // namespace

std::unique_ptr<BackendProcess> BackendProcess::Start(
    const std::string& name, const std::vector<std::string>& flags) {
  int out[2];
  // Close-on-exec, so other children (other backends, clients) do not
  // inherit the write end; dup2 onto stdout clears it for this one.
  if (pipe2(out, O_CLOEXEC) != 0) Fail(absl::StrCat("pipe2: ", strerror(errno)));
  std::vector<std::string> argv_strings = {LBKIT_GREETER_SERVER, "--port=0",
                                           "--name=" + name};
  argv_strings.insert(argv_strings.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  posix_spawn_file_actions_addclose(&actions, out[1]);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) Fail(absl::StrCat("posix_spawn ", argv[0], ": ", strerror(rc)));

  // Read stdout until the "listening on" line, with a deadline: a server
  // that never comes up must fail the test, not hang it.
  std::string buffer;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int port = -1;
  std::string host;
  while (port < 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      Fail(absl::StrCat("greeter_server ", name, " did not start in 20 s"));
    }
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[256];
    ssize_t n = read(out[0], chunk, sizeof(chunk));
    if (n <= 0) {
      waitpid(pid, nullptr, 0);
      Fail(absl::StrCat("greeter_server ", name, " exited before listening: ",
                        buffer));
    }
    buffer.append(chunk, static_cast<size_t>(n));
    size_t eol = buffer.find('\n');
    if (eol == std::string::npos) continue;
    const std::string line = buffer.substr(0, eol);
    // "listening on 127.0.0.1:PORT" (or the --host the test gave).
    const std::string prefix = "listening on ";
    const size_t colon = line.rfind(':');
    if (line.rfind(prefix, 0) != 0 || colon == std::string::npos || colon < prefix.size() ||
        !absl::SimpleAtoi(line.substr(colon + 1), &port)) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      Fail(absl::StrCat("unexpected first line from greeter_server: ", line));
    }
    host = line.substr(prefix.size(), colon - prefix.size());
  }
  // The server prints nothing else on stdout; closing our end is safe (a
  // later write would get EPIPE, which the server never does).
  close(out[0]);
  return std::unique_ptr<BackendProcess>(new BackendProcess(name, pid, std::move(host), port));
}

BackendProcess::~BackendProcess() {
  if (running()) Kill();
}

std::string BackendProcess::address() const {
  return absl::StrCat(host_, ":", port_);
}

void BackendProcess::Signal(int signal) const {
  if (running()) kill(pid_, signal);
}

void BackendProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGCONT);  // A frozen process must still die.
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void BackendProcess::Stop() {
  if (!running()) return;
  kill(pid_, SIGCONT);
  kill(pid_, SIGTERM);
  // Bounded: a server that ignores SIGTERM for 10 s is killed.
  for (int i = 0; i < 1000; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    usleep(10000);
  }
  Kill();
}

std::string Ipv4Target(
    const std::vector<std::unique_ptr<BackendProcess>>& backends) {
  std::vector<std::string> addresses;
  for (const auto& b : backends) addresses.push_back(b->address());
  return absl::StrCat("ipv4:", absl::StrJoin(addresses, ","));
}

}  // namespace lbkit::testing
