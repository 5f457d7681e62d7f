// lbkit_weighted_subsets and lbkit_circuit_breaker end to end: a 90/10
// canary split over lbkit-static labels, and overflow failing fast with
// RESOURCE_EXHAUSTED under 16 callers against a limit of 4.

#include <atomic>
#include <thread>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
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
