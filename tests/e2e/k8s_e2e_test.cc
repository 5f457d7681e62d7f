// lbkit-k8s end to end: greeter servers as pods (each its own 127.0.0.x,
// one port, as pods have), a fake Kubernetes API server
// (tests/support/fake_kube_apiserver.py, checked against the official
// Python client by lbkit_fake_kube_apiserver), and the real client channel.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ratio>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "greeter.grpc.pb.h"
#include "lbkit/stats.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/kube_fake.h"

namespace lbkit {
namespace {

using nlohmann::json;
using testing::FakePod;

constexpr char kServicesPath[] = "/api/v1/namespaces/default/services";
constexpr char kPodsPath[] = "/api/v1/namespaces/default/pods";
constexpr char kSlicesPath[] = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";

constexpr char kRetry[] = R"("methodConfig": [{"name": [{"service": "lbkit.examples.Greeter"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}])";

// A cluster: the fake API server, two nodes in two zones, and a Service
// `service` whose pods are greeter servers.
class Cluster {
 public:
  explicit Cluster(const std::string& service, testing::FakeKubeApiServer::Options options = {})
      : service_(service), api_(testing::FakeKubeApiServer::Start(options)) {
    api_->SetToken("client", {"*"});
    setenv("KUBECONFIG", api_->WriteKubeconfig("client").c_str(), 1);
    unsetenv("LBKIT_LOCALITY");
    api_->Create("/api/v1/nodes", testing::NodeJson("node-a", "region-1", "zone-a"));
    api_->Create("/api/v1/nodes", testing::NodeJson("node-b", "region-1", "zone-b"));
    api_->Create(kServicesPath, testing::ServiceJson(service, {{"app", service}}, {{"grpc", 50051}}));
  }

  // Starts a greeter server at 127.0.0.`host` on the cluster's pod port,
  // and its Pod object (not yet in a slice).
  FakePod StartPod(const std::string& name, int host, const std::string& version, char zone) {
    std::vector<std::string> flags = {absl::StrCat("--host=127.0.0.", host)};
    if (pod_port_ != 0) flags.push_back(absl::StrCat("--port=", pod_port_));
    auto server = testing::BackendProcess::Start(name, flags);
    pod_port_ = server->port();
    servers_[name] = std::move(server);
    FakePod pod{name, absl::StrCat("127.0.0.", host), std::string("node-") + zone,
                std::string("zone-") + zone, {{"app", service_}, {"version", version}}};
    api_->Create(kPodsPath, testing::PodJson(pod));
    return pod;
  }
  void StopServer(const std::string& name) { servers_.erase(name); }

  // Creates or replaces slice `name` with `pods`.
  void PutSlice(const std::string& name, const std::vector<FakePod>& pods) {
    json slice = testing::SliceJson(name, service_, "grpc", pod_port_, pods);
    auto r = api_->Request("PUT", absl::StrCat(kSlicesPath, "/", name), slice.dump());
    if (r.status == 404) {
      api_->Create(kSlicesPath, slice);
    } else {
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }

  testing::FakeKubeApiServer& api() { return *api_; }
  int pod_port() const { return pod_port_; }
  std::string target(const std::string& port = "grpc") const {
    return absl::StrCat("lbkit-k8s:///", service_, ".default:", port);
  }

 private:
  std::string service_;
  std::unique_ptr<testing::FakeKubeApiServer> api_;
  std::map<std::string, std::unique_ptr<testing::BackendProcess>> servers_;
  int pod_port_ = 0;
};

// Three v1 pods and one v2 pod: a1, a2 in zone a; b1, b2 (v2) in zone b.
struct FourPods {
  explicit FourPods(Cluster& cluster)
      : a1(cluster.StartPod("v1-a1", 11, "v1", 'a')),
        a2(cluster.StartPod("v1-a2", 12, "v1", 'a')),
        b1(cluster.StartPod("v1-b1", 13, "v1", 'b')),
        b2(cluster.StartPod("v2-b2", 14, "v2", 'b')) {
    cluster.PutSlice("slice-a", {a1, a2});
    cluster.PutSlice("slice-b", {b1, b2});
  }
  FakePod a1, a2, b1, b2;
};

const std::set<std::string> kAllFour = {"v1-a1", "v1-a2", "v1-b1", "v2-b2"};

TEST(K8sE2E, RoundRobinSpreadsCallsOverEveryPod) {
  Cluster cluster("greeter-rr");
  FourPods pods(cluster);
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target(), testing::LbConfig("lbkit_round_robin")));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  const testing::Tally tally = testing::CallMany(*stub, 4000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  for (const auto& name : kAllFour) EXPECT_NEAR(tally.per_backend.at(name), 1000, 2) << name;
  // The numeric port names the same Service port.
  auto by_number = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target("50051"), testing::LbConfig("lbkit_round_robin")));
  EXPECT_TRUE(testing::WaitForBackends(*by_number, kAllFour));
}

TEST(K8sE2E, WeightedSubsetsSelectPodsByTheirLabels) {
  Cluster cluster("greeter-canary");
  FourPods pods(cluster);
  auto stub = examples::Greeter::NewStub(testing::MakeChannel(
      cluster.target(),
      R"({"loadBalancingConfig": [{"lbkit_weighted_subsets": {"subsets": [
          {"name": "stable", "labels": {"version": "v1"}, "weight": 90},
          {"name": "canary", "labels": {"version": "v2"}, "weight": 10}]}}]})"));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  const testing::Tally tally = testing::CallMany(*stub, 10000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  const double v2_share = tally.per_backend.count("v2-b2") ? tally.per_backend.at("v2-b2") / 100.0 : 0;
  EXPECT_NEAR(v2_share, 10.0, 1.0);
  printf("[ figure ] lbkit_weighted_subsets 90/10 over lbkit-k8s: v2 got %.2f%% of 10000 calls\n",
         v2_share);
}

TEST(K8sE2E, LocalityKeepsCallsInTheClientPodsZone) {
  Cluster cluster("greeter-zones");
  FourPods pods(cluster);
  setenv("NODE_NAME", "node-a", 1);  // the downward API's spec.nodeName
  auto stub = examples::Greeter::NewStub(testing::MakeChannel(
      cluster.target(), R"({"loadBalancingConfig": [{"lbkit_locality": {
          "childPolicy": [{"lbkit_round_robin": {}}]}}]})"));
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"v1-a1", "v1-a2"}));
  const testing::Tally tally = testing::CallMany(*stub, 1000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_EQ(tally.per_backend.size(), 2u);
  EXPECT_EQ(tally.per_backend.count("v1-a1") + tally.per_backend.count("v1-a2"), 2u);
  // The state says where the client is and what was watched.
  const std::string state = DumpState();
  EXPECT_NE(state.find(R"("client_locality":"region-1/zone-a")"), std::string::npos) << state;
  EXPECT_NE(state.find(R"("endpoints_per_slice":{"slice-a":2,"slice-b":2})"), std::string::npos)
      << state;
  unsetenv("NODE_NAME");
}

// Calls in a loop on their own thread, remembering when each backend first
// answered.
class Load {
 public:
  explicit Load(examples::Greeter::Stub* stub) : thread_([this, stub]() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      testing::CallResult r = testing::CallOnce(*stub, 3000);
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      if (!r.status.ok()) {
        ++failed_;
        if (first_error_.empty()) first_error_ = r.status.error_message();
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      first_seen_.emplace(r.backend, now);
      last_seen_[r.backend] = now;
      log_.emplace_back(now, r.backend);
    }
  }) {}
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }
  // When `backend` first answered, waiting at most 10 s for it.
  std::optional<std::chrono::steady_clock::time_point> FirstSeen(const std::string& backend) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (auto it = first_seen_.find(backend); it != first_seen_.end()) return it->second;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }
  // Waits (at most `timeout`) until `backend` has answered a call after `since`.
  bool SeenSince(const std::string& backend, std::chrono::steady_clock::time_point since,
                 std::chrono::seconds timeout) {
    for (int i = 0; i < timeout.count() * 100; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = last_seen_.find(backend);
        if (it != last_seen_.end() && it->second > since) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Waits (at most `timeout`) until `backend` has had no call for `quiet`.
  bool WaitUntilIdle(const std::string& backend, std::chrono::milliseconds quiet,
                     std::chrono::seconds timeout = std::chrono::seconds(10)) {
    for (int i = 0; i < timeout.count() * 100; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = last_seen_.find(backend);
        if (it == last_seen_.end() || std::chrono::steady_clock::now() - it->second > quiet) {
          return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int calls_ = 0, failed_ = 0;
  std::string first_error_;
  std::map<std::string, std::chrono::steady_clock::time_point> first_seen_, last_seen_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> log_;
  std::thread thread_;

 public:
  // Every successful call (when, which backend), after Stop().
  const std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>>& log() const {
    return log_;
  }
};

double MillisSince(std::chrono::steady_clock::time_point start,
                   std::chrono::steady_clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

TEST(K8sE2E, PodsScaledInOutAndReplacedUnderLoadFailNoCall) {
  Cluster cluster("greeter-churn");
  FourPods pods(cluster);
  auto stub = examples::Greeter::NewStub(testing::MakeChannel(
      cluster.target(),
      absl::StrCat(R"({"loadBalancingConfig": [{"lbkit_round_robin": {}}],)", kRetry, "}")));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  Load load(stub.get());

  // Not ready: no new calls.
  FakePod b2 = pods.b2;
  b2.ready = false;
  cluster.PutSlice("slice-b", {pods.b1, b2});
  EXPECT_TRUE(load.WaitUntilIdle("v2-b2", std::chrono::milliseconds(300)));
  // Terminating (still serving): no new calls; its server keeps serving.
  FakePod b1 = pods.b1;
  b1.ready = false;
  b1.terminating = true;
  cluster.PutSlice("slice-b", {b1, b2});
  EXPECT_TRUE(load.WaitUntilIdle("v1-b1", std::chrono::milliseconds(300)));
  // Scaled in: removed from the slice, then the process stops.
  cluster.PutSlice("slice-b", {});
  cluster.StopServer("v1-b1");
  cluster.StopServer("v2-b2");

  // Scaled out: a new pod in traffic.
  FakePod c1 = cluster.StartPod("v1-c1", 15, "v1", 'b');
  const auto added = std::chrono::steady_clock::now();
  cluster.PutSlice("slice-b", {c1});
  auto seen = load.FirstSeen("v1-c1");
  ASSERT_TRUE(seen.has_value());
  const double scale_out_ms = MillisSince(added, *seen);

  // Replaced: a1 goes, d1 comes, in one slice update.
  FakePod d1 = cluster.StartPod("v1-d1", 16, "v1", 'a');
  const auto replaced = std::chrono::steady_clock::now();
  cluster.PutSlice("slice-a", {pods.a2, d1});
  seen = load.FirstSeen("v1-d1");
  ASSERT_TRUE(seen.has_value());
  const double replace_ms = MillisSince(replaced, *seen);
  EXPECT_TRUE(load.WaitUntilIdle("v1-a1", std::chrono::milliseconds(300)));
  cluster.StopServer("v1-a1");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  load.Stop();
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  printf("[ figure ] %d calls, %d failed; a new pod's first call came %.1f ms after its slice "
         "update (scale out), %.1f ms (replacement)\n",
         load.calls(), load.failed(), scale_out_ms, replace_ms);
  ::testing::Test::RecordProperty("scale_out_ms", std::to_string(scale_out_ms));
  ::testing::Test::RecordProperty("replace_ms", std::to_string(replace_ms));
}

TEST(K8sE2E, ApiServerTroubleKeepsTheEndpointsAndCatchesUp) {
  // The server ends every watch after 2 s, as real ones do after minutes.
  Cluster cluster("greeter-trouble", {.watch_timeout_seconds = 2});
  FourPods pods(cluster);
  auto stub = examples::Greeter::NewStub(testing::MakeChannel(
      cluster.target(),
      absl::StrCat(R"({"loadBalancingConfig": [{"lbkit_round_robin": {}}],)", kRetry, "}")));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  Load load(stub.get());
  // Watches end and resume: a change after several of them is seen.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  cluster.PutSlice("slice-b", {pods.b1});
  EXPECT_TRUE(load.WaitUntilIdle("v2-b2", std::chrono::milliseconds(300)));

  // 410 Gone: the change is made and the history compacted while the
  // client's slices watch is away (closed, and its next start held 3 s by
  // the fake), so it resumes from a version older than the compaction,
  // must re-list, and finds the change made in between. (Compacting while
  // the watch was open raced: a client that had already seen the change
  // resumed from the current version, which is no 410.)
  const json hold = {{"path_regex", "endpointslices\\?watch"},
                     {"count", 1},
                     {"kind", "delay"},
                     {"delay", 3.0}};
  ASSERT_EQ(cluster.api().Request("POST", "/fake/faults", hold.dump()).status, 200);
  ASSERT_EQ(cluster.api().Request("POST", "/fake/close-watches").status, 200);
  cluster.PutSlice("slice-b", {pods.b1, pods.b2});
  ASSERT_EQ(cluster.api().Request("POST", "/fake/compact").status, 200);
  const auto b2_back = std::chrono::steady_clock::now();
  EXPECT_TRUE(load.SeenSince("v2-b2", b2_back, std::chrono::seconds(30)))
      << DumpState() << "\n" << cluster.api().Log();

  // The token rotates: the old one is refused from now on.
  cluster.api().SetToken("client-2", {"*"});
  cluster.api().WriteClientToken("client-2");
  cluster.api().RemoveToken("client");
  ASSERT_EQ(cluster.api().Request("POST", "/fake/close-watches").status, 200);

  // The API server goes away for 10 s: calls go on over the last set.
  ASSERT_EQ(cluster.api().Request("POST", "/fake/down?seconds=10").status, 200);
  std::this_thread::sleep_for(std::chrono::seconds(11));
  // Back: a new pod is picked up (with the rotated token).
  FakePod c1 = cluster.StartPod("v1-c1", 15, "v1", 'a');
  cluster.PutSlice("slice-a", {pods.a1, pods.a2, c1});
  EXPECT_TRUE(load.FirstSeen("v1-c1").has_value());
  load.Stop();
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  const std::string state = DumpState();
  const json parsed = json::parse(state);
  int relists = 0;
  for (const auto& watch : parsed["k8s"]) {
    if (watch["service"] != "greeter-trouble") continue;
    for (const auto& r : watch["watches"]) relists += r["relists"].get<int>();
  }
  EXPECT_GE(relists, 1) << state;  // the 410
}

std::string FirstError(const std::string& target) {
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(target, testing::LbConfig("lbkit_round_robin")));
  testing::CallResult r = testing::CallOnce(*stub, 5000);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  return r.status.error_message();
}

TEST(K8sE2E, BeforeTheFirstListCallsFailWithTheReason) {
  Cluster cluster("greeter-errors");
  FourPods pods(cluster);
  // RBAC: everything but listing EndpointSlices.
  cluster.api().SetToken("no-slices", {"get:*", "list:services", "list:pods", "watch:*"});
  cluster.api().WriteClientToken("no-slices");
  std::string error = FirstError(cluster.target());
  EXPECT_NE(error.find(R"(cannot list resource "endpointslices" in API group "discovery.k8s.io")"),
            std::string::npos) << error;
  EXPECT_NE(error.find("examples/kubernetes/rbac.yaml"), std::string::npos) << error;

  cluster.api().WriteClientToken("client");
  error = FirstError("lbkit-k8s:///nosuch.default:grpc");
  EXPECT_NE(error.find("Service default/nosuch not found"), std::string::npos) << error;
  error = FirstError("lbkit-k8s:///greeter-errors.default:http");
  EXPECT_NE(error.find("has no TCP port named http (its ports: grpc=50051/TCP)"), std::string::npos)
      << error;
  error = FirstError("lbkit-k8s:///greeter-errors.default");
  EXPECT_NE(error.find("names no port"), std::string::npos) << error;

  cluster.api().WriteClientToken("stolen");
  error = FirstError("lbkit-k8s:///greeter-errors-401.default:grpc");
  EXPECT_NE(error.find("401"), std::string::npos) << error;

  // No credentials anywhere (not even when the suite itself runs in a pod).
  const std::string kubeconfig = getenv("KUBECONFIG");
  unsetenv("KUBECONFIG");
  const char* in_pod = getenv("KUBERNETES_SERVICE_HOST");
  const std::string saved_pod_host = in_pod != nullptr ? in_pod : "";
  unsetenv("KUBERNETES_SERVICE_HOST");
  const char* home = getenv("HOME");
  const std::string saved_home = home != nullptr ? home : "";
  setenv("HOME", "/nonexistent", 1);
  error = FirstError("lbkit-k8s:///greeter-errors-nocreds.default:grpc");
  EXPECT_NE(error.find("no credentials for the Kubernetes API"), std::string::npos) << error;
  setenv("HOME", saved_home.c_str(), 1);
  setenv("KUBECONFIG", kubeconfig.c_str(), 1);
  if (!saved_pod_host.empty()) setenv("KUBERNETES_SERVICE_HOST", saved_pod_host.c_str(), 1);
}

TEST(K8sE2E, AServiceWithoutSelectorWorksAndItsDeletionEmptiesTheSet) {
  Cluster cluster("greeter-manual");
  // Hand-made EndpointSlices behind a Service without a selector.
  cluster.api().Patch(absl::StrCat(kServicesPath, "/greeter-manual"),
                      {{"spec", {{"selector", nullptr}}}});
  FourPods pods(cluster);
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target(), testing::LbConfig("lbkit_round_robin")));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour)) << DumpState();
  // The Service is deleted: its pods' addresses are dropped, not kept.
  cluster.api().Delete(absl::StrCat(kServicesPath, "/greeter-manual"));
  EXPECT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) { return t.ok() == 0; }))
      << DumpState();
}

TEST(K8sE2E, CredentialsThatAppearLaterAreUsed) {
  Cluster cluster("greeter-late");
  FourPods pods(cluster);
  const std::string real = getenv("KUBECONFIG");
  const std::string late = real + ".late";
  setenv("KUBECONFIG", late.c_str(), 1);
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target(), testing::LbConfig("lbkit_round_robin")));
  const std::string error = FirstError(cluster.target());
  EXPECT_NE(error.find("cannot read " + late), std::string::npos) << error;
  // The kubeconfig is written after the channel was made.
  {
    std::ifstream in(real);
    std::ofstream out(late);
    out << in.rdbuf();
  }
  EXPECT_TRUE(testing::WaitForBackends(*stub, kAllFour, std::chrono::seconds(30)));
  setenv("KUBECONFIG", real.c_str(), 1);
}

TEST(K8sE2E, GarbageAndTruncatedStreamsKeepTheLastGoodSet) {
  Cluster cluster("greeter-faults", {.split_writes = true});
  FourPods pods(cluster);
  auto stub = examples::Greeter::NewStub(testing::MakeChannel(
      cluster.target(),
      absl::StrCat(R"({"loadBalancingConfig": [{"lbkit_round_robin": {}}],)", kRetry, "}")));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  Load load(stub.get());
  // Each fault breaks the slices' watch once; the client must come back
  // (after its backoff) and follow the next change.
  int round = 0;
  for (const char* kind : {"garbage", "truncate", "status"}) {
    json fault = {{"path_regex", "endpointslices\\?(limit|watch)"}, {"count", 1}, {"kind", kind},
                  {"status", 500}};
    ASSERT_EQ(cluster.api().Request("POST", "/fake/faults", fault.dump()).status, 200);
    ASSERT_EQ(cluster.api().Request("POST", "/fake/close-watches").status, 200);
    if (++round % 2 == 1) {
      cluster.PutSlice("slice-b", {pods.b1});
      EXPECT_TRUE(load.WaitUntilIdle("v2-b2", std::chrono::milliseconds(300),
                                     std::chrono::seconds(30)))
          << kind << "\n" << DumpState() << "\n" << cluster.api().Log();
    } else {
      const auto now = std::chrono::steady_clock::now();
      cluster.PutSlice("slice-b", {pods.b1, pods.b2});
      EXPECT_TRUE(load.SeenSince("v2-b2", now, std::chrono::seconds(30)))
          << kind << "\n" << DumpState() << "\n" << cluster.api().Log();
    }
  }
  // A slice the API server refuses (422) never reaches the client.
  json bad = testing::SliceJson("slice-a", "greeter-faults", "grpc", 1, {pods.a1});
  bad["endpoints"][0]["addresses"] = "not-a-list";
  EXPECT_EQ(cluster.api().Request("PUT", absl::StrCat(kSlicesPath, "/slice-a"), bad.dump()).status, 422);
  load.Stop();
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  const testing::Tally tally = testing::CallMany(*stub, 300);
  EXPECT_EQ(tally.per_backend.size(), 3u);  // a1, a2, b1: the garbage changed nothing else
}

long RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

TEST(K8sE2E, AThousandPodsInTenSlices) {
  Cluster cluster("greeter-big");
  FakePod live = cluster.StartPod("live", 11, "v1", 'a');
  // 999 more pods that are not listening, in 10 slices of 100.
  std::vector<std::vector<FakePod>> slices(10);
  slices[0].push_back(live);
  for (int i = 1; i < 1000; ++i) {
    FakePod pod{absl::StrCat("pod-", i), absl::StrCat("127.0.", 10 + i / 200, ".", i % 200 + 20),
                i % 2 ? "node-a" : "node-b", i % 2 ? "zone-a" : "zone-b",
                {{"app", "greeter-big"}, {"version", "v1"}}};
    cluster.api().Create(kPodsPath, testing::PodJson(pod));
    slices[i % 10].push_back(pod);
  }
  for (int s = 0; s < 10; ++s) cluster.PutSlice(absl::StrCat("slice-", s), slices[s]);
  const long rss_before = RssKib();
  const auto start = std::chrono::steady_clock::now();
  auto channel = testing::MakeChannel(cluster.target(), testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  // wait_for_ready: the first call waits for the one live pod.
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  examples::HelloRequest request;
  examples::HelloReply reply;
  grpc::Status status = stub->SayHello(&context, request, &reply);
  const double first_call_ms = MillisSince(start, std::chrono::steady_clock::now());
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.backend(), "live");
  const json state = json::parse(DumpState());
  int endpoints = 0;
  for (const auto& watch : state["k8s"]) {
    if (watch["service"] != "greeter-big") continue;
    for (const auto& [slice, count] : watch["endpoints_per_slice"].items()) endpoints += count.get<int>();
  }
  EXPECT_EQ(endpoints, 1000);
  const long rss_after = RssKib();
  printf("[ figure ] 1000 pods in 10 slices: first call %.0f ms after the channel was made; "
         "RSS grew %ld KiB (%.1f KiB per endpoint, gRPC's subchannels included)\n",
         first_call_ms, rss_after - rss_before, (rss_after - rss_before) / 1000.0);
  ::testing::Test::RecordProperty("first_call_ms", std::to_string(first_call_ms));
}

// --- ?istio=true: the cluster's DestinationRules and VirtualServices ---------

constexpr char kIstioPath[] = "/apis/networking.istio.io/v1/namespaces/default";

// examples/canary/canary.yaml (the seed's canary rule), for Service `host`.
json CanaryDestinationRule(const std::string& host) {
  return json::parse(absl::StrCat(R"({"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
    "metadata": {"name": ")", host, R"(", "namespace": "default"},
    "spec": {"host": ")", host, R"(",
      "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"},
        "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s"}},
      "subsets": [{"name": "v1", "labels": {"version": "v1"}},
                  {"name": "v2", "labels": {"version": "v2"}}]}})"));
}

json WeightedRoute(const std::string& host, int v1, int v2) {
  return json::parse(absl::StrCat(R"({"route": [
      {"destination": {"host": ")", host, R"(", "subset": "v1"}, "weight": )", v1, R"(},
      {"destination": {"host": ")", host, R"(", "subset": "v2"}, "weight": )", v2, R"(}],
    "timeout": "2s", "retries": {"attempts": 2, "retryOn": "unavailable"}})"));
}

json CanaryVirtualService(const std::string& host, int v1, int v2) {
  json vs = {{"apiVersion", "networking.istio.io/v1"},
             {"kind", "VirtualService"},
             {"metadata", {{"name", host}, {"namespace", "default"}}},
             {"spec", {{"hosts", {host}}, {"http", {WeightedRoute(host, v1, v2)}}}}};
  return vs;
}

// The application's own config: what the channel uses without a rule.
const std::string kAppConfig =
    absl::StrCat(R"({"loadBalancingConfig": [{"lbkit_round_robin": {}}],)", kRetry, "}");

double Share(const testing::Tally& tally, const std::string& backend) {
  auto it = tally.per_backend.find(backend);
  return it == tally.per_backend.end() ? 0 : 100.0 * it->second / std::max(1, tally.ok());
}

// Established client connections to `port` (any 127.0.0.x), as
// "remote-ip-hex:local-port-hex" from /proc/net/tcp: the same entry before
// and after means the same connection.
std::set<std::string> ConnectionsTo(int port) {
  std::set<std::string> out;
  char port_hex[8];
  snprintf(port_hex, sizeof(port_hex), "%04X", port);
  // gRPC's sockets are IPv6 ones with IPv4-mapped addresses: both tables.
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state != "01" || remote.substr(remote.find(':') + 1) != port_hex) continue;
      out.insert(absl::StrCat(remote, "<-", local.substr(local.find(':') + 1)));
    }
  }
  return out;
}

std::string IstioState() {
  const json state = json::parse(DumpState());
  return state.contains("istio") ? state["istio"].dump() : "(no istio section)";
}

TEST(K8sIstioE2E, TheCanaryRuleAppliesAndFollowsEditsLive) {
  Cluster cluster("greeter");
  FourPods pods(cluster);
  cluster.api().Create(absl::StrCat(kIstioPath, "/destinationrules"), CanaryDestinationRule("greeter"));
  cluster.api().Create(absl::StrCat(kIstioPath, "/virtualservices"),
                       CanaryVirtualService("greeter", 90, 10));
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target() + "?istio=true", kAppConfig));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  testing::Tally tally = testing::CallMany(*stub, 10000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_NEAR(Share(tally, "v2-b2"), 10.0, 1.0) << IstioState();
  printf("[ figure ] canary rule from the cluster: v2 got %.2f%% of 10000 calls\n",
         Share(tally, "v2-b2"));

  // Under load, the VirtualService goes to 50/50.
  const std::set<std::string> before = ConnectionsTo(cluster.pod_port());
  Load load(stub.get());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto patched = std::chrono::steady_clock::now();
  cluster.api().Patch(absl::StrCat(kIstioPath, "/virtualservices/greeter"),
                      {{"spec", {{"http", {WeightedRoute("greeter", 50, 50)}}}}});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  load.Stop();
  EXPECT_EQ(load.failed(), 0) << load.first_error();
  // When the split changed: the first window of 200 calls after the patch
  // in which v2 took over a third.
  double followed_ms = -1;
  const auto& log = load.log();
  for (size_t i = 0; i + 200 <= log.size(); ++i) {
    if (log[i].first < patched) continue;
    int v2 = 0;
    for (size_t j = i; j < i + 200; ++j) v2 += log[j].second == "v2-b2";
    if (v2 > 66) {
      followed_ms = MillisSince(patched, log[i].first);
      break;
    }
  }
  ASSERT_GE(followed_ms, 0) << "the split never followed the edit; " << IstioState();
  tally = testing::CallMany(*stub, 4000);
  EXPECT_NEAR(Share(tally, "v2-b2"), 50.0, 3.0);
  // Endpoints that stayed kept their connections.
  const std::set<std::string> after = ConnectionsTo(cluster.pod_port());
  for (const std::string& connection : before) {
    EXPECT_TRUE(after.count(connection)) << connection << " was replaced";
  }
  EXPECT_FALSE(before.empty());
  printf("[ figure ] VirtualService edited to 50/50 under load: the split followed %.0f ms after "
         "the PATCH, %d calls, %d failed, %zu of %zu connections kept\n",
         followed_ms, load.calls(), load.failed(), before.size(), before.size());
  ::testing::Test::RecordProperty("istio_edit_followed_ms", std::to_string(followed_ms));

  // The rules go: back to the application's config (round robin).
  cluster.api().Delete(absl::StrCat(kIstioPath, "/virtualservices/greeter"));
  cluster.api().Delete(absl::StrCat(kIstioPath, "/destinationrules/greeter"));
  EXPECT_TRUE(testing::CallUntil(
      *stub, 400, [](const testing::Tally& t) {
        for (const auto& name : kAllFour) {
          auto it = t.per_backend.find(name);
          if (it == t.per_backend.end() || it->second < 95 || it->second > 105) return false;
        }
        return true;
      }))
      << IstioState() << "\n" << cluster.api().Log();
}

TEST(K8sIstioE2E, AHeaderMatchRouteAppliesLive) {
  Cluster cluster("greeter-jason");
  FourPods pods(cluster);
  cluster.api().Create(absl::StrCat(kIstioPath, "/destinationrules"),
                       CanaryDestinationRule("greeter-jason"));
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target() + "?istio=true", kAppConfig));
  ASSERT_TRUE(testing::WaitForBackends(*stub, kAllFour));
  // Bookinfo's rule (istio.io, "Request Routing"): end-user jason to v2.
  json vs = CanaryVirtualService("greeter-jason", 100, 0);
  vs["spec"]["http"] = json::parse(R"([
      {"match": [{"headers": {"end-user": {"exact": "jason"}}}],
       "route": [{"destination": {"host": "greeter-jason", "subset": "v2"}}]},
      {"route": [{"destination": {"host": "greeter-jason", "subset": "v1"}}]}])");
  cluster.api().Create(absl::StrCat(kIstioPath, "/virtualservices"), vs);
  auto call_as = [&](const std::string& user) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (!user.empty()) context.AddMetadata("end-user", user);
    examples::HelloRequest request;
    examples::HelloReply reply;
    grpc::Status status = stub->SayHello(&context, request, &reply);
    return status.ok() ? reply.backend() : "error: " + status.error_message();
  };
  bool applied = false;
  for (int i = 0; i < 200 && !applied; ++i) {
    applied = call_as("jason") == "v2-b2" && call_as("jason") == "v2-b2" &&
              call_as("jason") == "v2-b2";
    if (!applied) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(applied) << IstioState();
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(call_as("jason"), "v2-b2");
    EXPECT_NE(call_as(""), "v2-b2");
    EXPECT_NE(call_as("mallory"), "v2-b2");
  }
}

TEST(K8sIstioE2E, ARuleThatDoesNotTranslateKeepsTheLastGoodConfig) {
  Cluster cluster("greeter-bad");
  FourPods pods(cluster);
  cluster.api().Create(absl::StrCat(kIstioPath, "/destinationrules"),
                       CanaryDestinationRule("greeter-bad"));
  cluster.api().Create(absl::StrCat(kIstioPath, "/virtualservices"),
                       CanaryVirtualService("greeter-bad", 0, 100));
  auto stub = examples::Greeter::NewStub(
      testing::MakeChannel(cluster.target() + "?istio=true", kAppConfig));
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"v2-b2"}));
  // An edit the API server takes (no schema here) but Istio would refuse.
  json bad = WeightedRoute("greeter-bad", 50, 50);
  bad["route"][0]["weight"] = "fifty";
  cluster.api().Patch(absl::StrCat(kIstioPath, "/virtualservices/greeter-bad"),
                      {{"spec", {{"http", {bad}}}}});
  std::string state;
  for (int i = 0; i < 200; ++i) {
    state = IstioState();
    if (state.find("is not an integer") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(state.find(R"(VirtualService default/greeter-bad)"), std::string::npos) << state;
  EXPECT_NE(state.find(R"(\"fifty\" is not an integer)"), std::string::npos) << state;
  testing::Tally tally = testing::CallMany(*stub, 500);
  EXPECT_EQ(tally.per_backend.size(), 1u);  // still all to v2: the last good config
  EXPECT_EQ(tally.per_backend.count("v2-b2"), 1u);
  EXPECT_NE(PrometheusText().find("lbkit_k8s_istio_translation_errors_total "), std::string::npos);
  // The next good edit is applied, and the error is gone.
  cluster.api().Patch(absl::StrCat(kIstioPath, "/virtualservices/greeter-bad"),
                      {{"spec", {{"http", {WeightedRoute("greeter-bad", 100, 0)}}}}});
  EXPECT_TRUE(testing::CallUntil(*stub, 100, [](const testing::Tally& t) {
    return t.per_backend.count("v2-b2") == 0 && t.failed() == 0;
  })) << IstioState();
  EXPECT_EQ(IstioState().find("is not an integer"), std::string::npos) << IstioState();
}

}  // namespace
}  // namespace lbkit
