// Runs the greeter_client binary, as users and the benchmarks do, and
// captures its report.

#ifndef LBKIT_TESTS_SUPPORT_CLIENT_PROCESS_H_
#define LBKIT_TESTS_SUPPORT_CLIENT_PROCESS_H_

#include <stdio.h>
#include <sys/wait.h>

#include <string>

namespace lbkit::testing {

struct ClientRun {
  int exit_code = -1;
  std::string out;
};

// Runs greeter_client with `flags`, capturing stdout (stderr passes through).
inline ClientRun RunClient(const std::string& flags) {
  ClientRun run;
  // Bounded: a client that hangs must fail its test, not stall the suite.
  const std::string command = "timeout 120 " + std::string(LBKIT_GREETER_CLIENT) + " " + flags;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, n);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

inline std::string Quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_CLIENT_PROCESS_H_
