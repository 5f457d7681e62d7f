#include "tests/support/kube_fake.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace lbkit::testing {

namespace {

[[noreturn]] void Fail(const std::string& message) {
  fprintf(stderr, "FakeKubeApiServer: %s\n", message.c_str());
  abort();
}

size_t Append(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

std::unique_ptr<FakeKubeApiServer> FakeKubeApiServer::Start(Options options) {
  std::unique_ptr<FakeKubeApiServer> api(new FakeKubeApiServer());
  api->tokens_["admin"] = {"*"};
  api->WriteTokens();
  std::vector<std::string> args = {"/usr/bin/python3", LBKIT_FAKE_KUBE_APISERVER,
                                   "--cert", api->certs_.path("server.pem"),
                                   "--key", api->certs_.path("server.key"),
                                   "--client-ca", api->certs_.path("ca.pem"),
                                   "--tokens", api->dir_.path() + "/tokens.json",
                                   "--host", "127.0.0.1", "--port", "0"};
  if (options.watch_timeout_seconds > 0) {
    args.push_back("--watch-timeout");
    args.push_back(absl::StrCat(options.watch_timeout_seconds));
  }
  if (options.split_writes) args.push_back("--split-writes");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) Fail("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  pid_t pid;
  const std::string log = api->dir_.path() + "/apiserver.log";
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc != 0) Fail(absl::StrCat("posix_spawn python3: ", strerror(rc)));
  api->pid_ = pid;
  std::string buffer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (buffer.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) Fail("the fake API server did not start in 20 s");
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char chunk[256];
    ssize_t n = read(out[0], chunk, sizeof(chunk));
    if (n <= 0) Fail(absl::StrCat("the fake API server exited; see ", log));
    buffer.append(chunk, static_cast<size_t>(n));
  }
  close(out[0]);
  const std::string line = buffer.substr(0, buffer.find('\n'));
  if (line.rfind("LISTENING ", 0) != 0 || !absl::SimpleAtoi(line.substr(10), &api->port_)) {
    Fail(absl::StrCat("unexpected first line: ", line));
  }
  return api;
}

FakeKubeApiServer::~FakeKubeApiServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string FakeKubeApiServer::Log() const {
  std::ifstream in(dir_.path() + "/apiserver.log");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 6000 ? text.substr(text.size() - 6000) : text;
}

std::string FakeKubeApiServer::url() const { return absl::StrCat("https://127.0.0.1:", port_); }

void FakeKubeApiServer::WriteTokens() const {
  nlohmann::json tokens = nlohmann::json::object();
  for (const auto& [token, allow] : tokens_) {
    tokens[token] = {{"user", token == "admin" ? "admin" : "system:serviceaccount:default:" + token},
                     {"allow", allow}};
  }
  tokens["cert:lbkit-test-client"] = {{"user", "lbkit-test-client"}, {"allow", {"*"}}};
  const std::string path = dir_.path() + "/tokens.json";
  {
    std::ofstream out(path + ".tmp");
    out << tokens.dump();
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

void FakeKubeApiServer::SetToken(const std::string& token, const std::vector<std::string>& allow) {
  tokens_[token] = allow;
  WriteTokens();
}

void FakeKubeApiServer::RemoveToken(const std::string& token) {
  tokens_.erase(token);
  WriteTokens();
}

FakeKubeApiServer::Response FakeKubeApiServer::Request(const std::string& method,
                                                       const std::string& path,
                                                       const std::string& body,
                                                       const std::string& content_type) const {
  CURL* curl = curl_easy_init();
  Response response;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Authorization: Bearer admin");
  headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  const std::string url = this->url() + path;
  const std::string ca = certs_.path("ca.pem");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

void FakeKubeApiServer::Create(const std::string& collection, const nlohmann::json& object) const {
  Response r = Request("POST", collection, object.dump());
  if (r.status != 201 && r.status != 200) {
    Fail(absl::StrCat("POST ", collection, ": ", r.status, " ", r.body));
  }
}

void FakeKubeApiServer::Patch(const std::string& object_path, const nlohmann::json& patch) const {
  Response r = Request("PATCH", object_path, patch.dump(), "application/merge-patch+json");
  if (r.status != 200) Fail(absl::StrCat("PATCH ", object_path, ": ", r.status, " ", r.body));
}

void FakeKubeApiServer::Delete(const std::string& object_path) const {
  Response r = Request("DELETE", object_path);
  if (r.status != 200 && r.status != 202) {
    Fail(absl::StrCat("DELETE ", object_path, ": ", r.status, " ", r.body));
  }
}

std::string FakeKubeApiServer::WriteKubeconfig(const std::string& token) {
  WriteClientToken(token);
  const std::string path = dir_.path() + "/kubeconfig";
  std::ofstream out(path);
  out << "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: " << url()
      << "\n    certificate-authority: " << certs_.path("ca.pem")
      << "\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: client\n"
      << "    namespace: default\ncurrent-context: fake\nusers:\n- name: client\n  user:\n"
      << "    tokenFile: client-token\n";  // relative to the kubeconfig's directory
  return path;
}

void FakeKubeApiServer::WriteClientToken(const std::string& token) {
  const std::string path = dir_.path() + "/client-token";
  {
    std::ofstream out(path + ".tmp");
    out << token << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

nlohmann::json ServiceJson(const std::string& name, const std::map<std::string, std::string>& selector,
                           const std::vector<std::pair<std::string, int>>& ports) {
  nlohmann::json port_list = nlohmann::json::array();
  for (const auto& [port_name, port] : ports) {
    port_list.push_back({{"name", port_name}, {"port", port}, {"protocol", "TCP"},
                         {"targetPort", port_name}});
  }
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"type", "ClusterIP"}, {"selector", selector}, {"ports", port_list}}}};
}

nlohmann::json PodJson(const FakePod& pod) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", pod.name}, {"namespace", "default"}, {"labels", pod.labels}}},
          {"spec", {{"nodeName", pod.node}, {"containers", {{{"name", "greeter"}, {"image", "greeter"}}}}}},
          {"status", {{"podIP", pod.ip}, {"phase", "Running"}}}};
}

nlohmann::json SliceJson(const std::string& name, const std::string& service,
                         const std::string& port_name, int port, const std::vector<FakePod>& pods) {
  nlohmann::json endpoints = nlohmann::json::array();
  for (const FakePod& pod : pods) {
    endpoints.push_back(
        {{"addresses", {pod.ip}},
         {"conditions", {{"ready", pod.ready}, {"serving", pod.serving}, {"terminating", pod.terminating}}},
         {"nodeName", pod.node},
         {"zone", pod.zone},
         {"targetRef", {{"kind", "Pod"}, {"name", pod.name}, {"namespace", "default"}}}});
  }
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name}, {"namespace", "default"}, {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"ports", {{{"name", port_name}, {"port", port}, {"protocol", "TCP"}}}},
          {"endpoints", endpoints}};
}

nlohmann::json NodeJson(const std::string& name, const std::string& region, const std::string& zone) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", name},
            {"labels", {{"topology.kubernetes.io/region", region}, {"topology.kubernetes.io/zone", zone}}}}}};
}

}  // namespace lbkit::testing
