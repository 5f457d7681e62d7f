// Real backends for end-to-end tests: greeter_server processes on
// 127.0.0.1, started on ephemeral ports, that a test can signal
// (SIGUSR1/SIGUSR2 flip health, SIGSTOP freezes), kill and restart.

#ifndef LBKIT_TESTS_SUPPORT_BACKEND_PROCESS_H_
#define LBKIT_TESTS_SUPPORT_BACKEND_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lbkit::testing {

class BackendProcess {
 public:
  // Starts greeter_server --port=0 --name=NAME plus `flags` (a --host or
  // --port there wins), and waits (at most 20 s) for its "listening on
  // HOST:PORT" line. Aborts the test
  // binary with a message if the server does not come up.
  static std::unique_ptr<BackendProcess> Start(
      const std::string& name, const std::vector<std::string>& flags = {});

  ~BackendProcess();
  BackendProcess(const BackendProcess&) = delete;
  BackendProcess& operator=(const BackendProcess&) = delete;

  const std::string& name() const { return name_; }
  int port() const { return port_; }
  // "127.0.0.1:PORT" (HOST:PORT with another --host)
  std::string address() const;
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  void Signal(int signal) const;
  // SIGKILL, then reaps the process.
  void Kill();
  // SIGTERM (graceful shutdown), then reaps the process.
  void Stop();

 private:
  BackendProcess(std::string name, pid_t pid, std::string host, int port)
      : name_(std::move(name)), pid_(pid), host_(std::move(host)), port_(port) {}

  std::string name_;
  pid_t pid_;
  std::string host_;
  int port_;
};

// "ipv4:127.0.0.1:P1,127.0.0.1:P2,..." for a channel target.
std::string Ipv4Target(
    const std::vector<std::unique_ptr<BackendProcess>>& backends);

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_BACKEND_PROCESS_H_
