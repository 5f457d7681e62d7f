// lbkit_weighted_subsets and lbkit_circuit_breaker end to end: a 90/10
// canary split over lbkit-static labels, and overflow failing fast with
// RESOURCE_EXHAUSTED under 16 callers against a limit of 4.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <signal.h>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "lbkit/istio.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Backends = std::vector<std::unique_ptr<BackendProcess>>;

TEST(WeightedSubsetsE2E, CanaryGetsExactlyItsWeight) {
  Backends backends;
  for (int i = 0; i < 3; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("v1-", i)));
  backends.push_back(BackendProcess::Start("v2-0"));
  std::vector<std::string> entries;
  for (const auto& b : backends) {
    entries.push_back(absl::StrCat(b->address(), ";label.version=", b->name().substr(0, 2)));
  }
  auto channel = testing::MakeChannel(
      "lbkit-static:///" + absl::StrJoin(entries, ","),
      R"({"loadBalancingConfig": [{"lbkit_weighted_subsets": {"subsets": [
          {"name": "stable", "labels": {"version": "v1"}, "weight": 90},
          {"name": "canary", "labels": {"version": "v2"}, "weight": 10}]}}]})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"v1-0", "v1-1", "v1-2", "v2-0"}));
  const testing::Tally tally = testing::CallMany(*stub, 1000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_NEAR(tally.per_backend.count("v2-0") ? tally.per_backend.at("v2-0") : 0, 100, 1);
  for (const char* v1 : {"v1-0", "v1-1", "v1-2"}) {
    EXPECT_NEAR(tally.per_backend.at(v1), 300, 2) << v1;
  }
}

// onEmptySubset "fail": the empty subset's share fails at once with
// UNAVAILABLE, wait_for_ready calls included. Before the fix those waited
// for the subset until their deadline (DEADLINE_EXCEEDED).
TEST(WeightedSubsetsE2E, AnEmptySubsetFailsItsShareAtOnceEvenForWaitForReady) {
  auto stable = BackendProcess::Start("v1-0");
  auto canary = BackendProcess::Start("v2-0");
  auto channel = testing::MakeChannel(
      absl::StrCat("lbkit-static:///", stable->address(), ";label.version=v1,",
                   canary->address(), ";label.version=v2"),
      R"({"loadBalancingConfig": [{"lbkit_weighted_subsets": {"onEmptySubset": "fail",
          "subsets": [{"name": "stable", "labels": {"version": "v1"}, "weight": 50},
                      {"name": "canary", "labels": {"version": "v2"}, "weight": 50}]}}],
          "healthCheckConfig": {"serviceName": ""}})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"v1-0", "v2-0"}));
  canary->Signal(SIGUSR1);  // NOT_SERVING: the canary subset is empty
  ASSERT_TRUE(testing::CallUntil(*stub, 10, [](const testing::Tally& t) {
    return t.per_backend.count("v2-0") == 0 && t.failed() > 0;
  }));
  int unavailable = 0, ok = 0, other = 0;
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    examples::HelloRequest request;
    examples::HelloReply reply;
    const grpc::Status status = stub->SayHello(&context, request, &reply);
    if (status.ok()) {
      ++ok;
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      ++unavailable;
    } else {
      ++other;
      ADD_FAILURE() << status.error_code() << ": " << status.error_message();
    }
  }
  EXPECT_EQ(ok, 10);
  EXPECT_EQ(unavailable, 10);
  EXPECT_EQ(other, 0);
}

// The canary of examples/canary: the DestinationRule and VirtualService go
// through lbkit-istio, the split is measured over 10,000 calls, and the
// canary turning NOT_SERVING moves everything to v1 without a failed call.
constexpr char kCanaryYaml[] = R"(
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: greeter}
spec:
  host: greeter
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: greeter}
spec:
  hosts: [greeter]
  http:
  - route:
    - {destination: {host: greeter, subset: v1}, weight: 90}
    - {destination: {host: greeter, subset: v2}, weight: 10}
)";

TEST(WeightedSubsetsE2E, IstioCanarySplitsNinetyTenAndFailsOverToStable) {
  Backends backends;
  for (int i = 0; i < 2; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("v1-", i)));
  backends.push_back(BackendProcess::Start("v2-0"));
  std::vector<std::string> entries;
  for (const auto& b : backends) {
    entries.push_back(absl::StrCat(b->address(), ";label.version=", b->name().substr(0, 2)));
  }
  auto translated = TranslateIstio(kCanaryYaml);
  ASSERT_TRUE(translated.ok()) << translated.status();
  // The one difference from a sidecar worth a warning here: a retry may
  // land in the other subset.
  ASSERT_EQ(translated->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(translated->warnings[0], "a gRPC retry picks again"));
  // Health from the standard top-level field, next to what lbkit-istio made.
  std::string config = translated->service_config;
  config.insert(1, R"("healthCheckConfig": {"serviceName": ""}, )");
  auto channel = testing::MakeChannel("lbkit-static:///" + absl::StrJoin(entries, ","), config);
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"v1-0", "v1-1", "v2-0"}));
  testing::Tally tally = testing::CallMany(*stub, 10000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  const double canary = 100.0 * tally.per_backend["v2-0"] / 10000;
  printf("canary from Istio YAML: v2 got %.2f%% of 10,000 calls (weight 10)\n", canary);
  EXPECT_NEAR(canary, 10.0, 1.0);

  backends[2]->Signal(SIGUSR1);  // v2 NOT_SERVING
  testing::Tally during;
  ASSERT_TRUE(testing::CallUntil(*stub, 50, [&](const testing::Tally& t) {
    for (const auto& [code, n] : t.errors) during.errors[code] += n;
    return t.per_backend.count("v2-0") == 0;
  }));
  tally = testing::CallMany(*stub, 2000);
  EXPECT_EQ(during.failed(), 0);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_EQ(tally.per_backend["v1-0"] + tally.per_backend["v1-1"], 2000);
}

TEST(CircuitBreakerE2E, NoMoreThanTheLimitReachesTheBackend) {
  Backends backends;
  backends.push_back(BackendProcess::Start("slow", {"--delay_ms=100"}));
  auto channel = testing::MakeChannel(
      testing::Ipv4Target(backends),
      R"({"loadBalancingConfig": [{"lbkit_circuit_breaker": {"maxConcurrentRequests": 8}}]})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"slow"}));
  std::atomic<int> ok{0}, exhausted{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 32; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        const testing::CallResult r = testing::CallOnce(*stub, 5000);
        if (r.status.ok()) ++ok;
        if (r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) ++exhausted;
      }
    });
  }
  for (auto& t : callers) t.join();
  // What the server saw, from its own count.
  auto control = examples::GreeterControl::NewStub(
      grpc::CreateChannel(backends[0]->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  examples::Behavior behavior;
  ASSERT_TRUE(control->GetBehavior(&context, examples::GetBehaviorRequest(), &behavior).ok());
  printf("circuit breaker, limit 8, 32 callers: at most %d calls at once on the server; %d "
         "answered, %d refused fast\n",
         behavior.max_in_flight(), ok.load(), exhausted.load());
  EXPECT_LE(behavior.max_in_flight(), 8);
  EXPECT_GE(behavior.max_in_flight(), 6);  // the limit was reached, not avoided
  EXPECT_GT(exhausted, 0);
  EXPECT_EQ(ok + exhausted, 320);
}

TEST(CircuitBreakerE2E, OverflowFailsFastWithResourceExhausted) {
  Backends backends;
  for (int i = 0; i < 2; ++i) {
    backends.push_back(BackendProcess::Start(absl::StrCat("cb-", i), {"--delay_ms=50"}));
  }
  auto channel = testing::MakeChannel(
      testing::Ipv4Target(backends),
      R"({"loadBalancingConfig": [{"lbkit_circuit_breaker": {"maxConcurrentRequests": 4}}]})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"cb-0", "cb-1"}));
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::string message;
  std::mutex mu;
  std::vector<std::thread> callers;
  for (int t = 0; t < 16; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        testing::CallResult r = testing::CallOnce(*stub, 5000);
        if (r.status.ok()) {
          ++ok;
        } else if (r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++exhausted;
          std::lock_guard<std::mutex> lock(mu);
          message = r.status.error_message();
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : callers) t.join();
  printf("circuit breaker, 16 callers, limit 4, 50 ms calls: %d answered, %d refused\n",
         ok.load(), exhausted.load());
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(message,
            "lbkit_circuit_breaker: 4 calls in flight on the channel, the maxConcurrentRequests "
            "limit");
}

}  // namespace
}  // namespace lbkit
