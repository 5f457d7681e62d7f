// The fake Kubernetes API server of the lbkit-k8s tests
// (tests/support/fake_kube_apiserver.py) as a C++ test sees it: started on
// 127.0.0.1 with a CA made at test time, driven with admin requests, and a
// kubeconfig for the client under test.
//
//   auto api = FakeKubeApiServer::Start({.watch_timeout_seconds = 3});
//   api->Create("/api/v1/namespaces/default/services", ServiceJson(...));
//   setenv("KUBECONFIG", api->WriteKubeconfig("client-token").c_str(), 1);

#ifndef LBKIT_TESTS_SUPPORT_KUBE_FAKE_H_
#define LBKIT_TESTS_SUPPORT_KUBE_FAKE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/temp_files.h"
#include "tests/support/test_certs.h"

namespace lbkit::testing {

class FakeKubeApiServer {
 public:
  struct Options {
    int watch_timeout_seconds = 0;  // 0: the fake's default
    bool split_writes = false;
  };
  // Aborts the test binary if the fake does not come up in 20 s.
  static std::unique_ptr<FakeKubeApiServer> Start(Options options);
  ~FakeKubeApiServer();

  int port() const { return port_; }
  std::string url() const;

  // Tokens the fake accepts: token -> allowed "verb:resource" ("*" all).
  // "admin" always exists. Rewritten files take effect on the next request.
  void SetToken(const std::string& token, const std::vector<std::string>& allow);
  void RemoveToken(const std::string& token);

  struct Response {
    long status = 0;
    std::string body;
  };
  // An admin request; `body` as JSON for POST/PUT/PATCH.
  Response Request(const std::string& method, const std::string& path,
                   const std::string& body = "",
                   const std::string& content_type = "application/json") const;
  // POST that must succeed (aborts the test with the body otherwise).
  void Create(const std::string& collection, const nlohmann::json& object) const;
  // JSON merge patch that must succeed.
  void Patch(const std::string& object_path, const nlohmann::json& patch) const;
  void Delete(const std::string& object_path) const;

  // A kubeconfig naming this server, its CA and a token file holding
  // `token`; returns its path. Rewrite the token with WriteClientToken.
  std::string WriteKubeconfig(const std::string& token);
  void WriteClientToken(const std::string& token);

  const TestCerts& certs() const { return certs_; }
  // The fake's request log (one line per request), for failure messages.
  std::string Log() const;

 private:
  FakeKubeApiServer() = default;
  void WriteTokens() const;

  TestCerts certs_;
  TempDir dir_;
  std::map<std::string, std::vector<std::string>> tokens_;
  int pid_ = -1;
  int port_ = 0;
};

// Objects as the API server holds them, for tests.
nlohmann::json ServiceJson(const std::string& name, const std::map<std::string, std::string>& selector,
                           const std::vector<std::pair<std::string, int>>& ports);
struct FakePod {
  std::string name, ip, node, zone;
  std::map<std::string, std::string> labels;
  bool ready = true, serving = true, terminating = false;
};
nlohmann::json PodJson(const FakePod& pod);
// An EndpointSlice of `service` with one port named `port_name` = `port`.
nlohmann::json SliceJson(const std::string& name, const std::string& service,
                         const std::string& port_name, int port, const std::vector<FakePod>& pods);
nlohmann::json NodeJson(const std::string& name, const std::string& region, const std::string& zone);

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_KUBE_FAKE_H_
