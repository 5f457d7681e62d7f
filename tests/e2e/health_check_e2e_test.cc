// Poll-mode health checks end to end (healthCheck: {"mode": "poll"}) on real
// greeter servers: NOT_SERVING for unhealthyThreshold polls takes a backend
// out, healthyThreshold SERVING polls bring it back, a server without a
// health service counts as healthy, and "watch" mode works per policy.

#include <signal.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Backends = std::vector<std::unique_ptr<BackendProcess>>;
using Clock = std::chrono::steady_clock;

std::string PollConfig(const std::string& policy) {
  return absl::StrCat(R"({"loadBalancingConfig": [{")", policy, R"(": {"healthCheck": {
      "mode": "poll", "interval": "0.2s", "timeout": "0.1s",
      "unhealthyThreshold": 3, "healthyThreshold": 2}}}]})");
}

class HealthPollE2E : public ::testing::TestWithParam<const char*> {};

TEST_P(HealthPollE2E, ThresholdsTakeABackendOutAndBringItBack) {
  Backends backends;
  for (int i = 0; i < 3; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("hp-", i)));
  auto channel = testing::MakeChannel(testing::Ipv4Target(backends), PollConfig(GetParam()));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"hp-0", "hp-1", "hp-2"}));

  backends[0]->Signal(SIGUSR1);  // NOT_SERVING
  const auto flipped = Clock::now();
  ASSERT_TRUE(testing::CallUntil(*stub, 30, [](const testing::Tally& t) {
    return t.per_backend.count("hp-0") == 0 && t.failed() == 0;
  }));
  const double out_ms = std::chrono::duration<double, std::milli>(Clock::now() - flipped).count();
  // Nothing fails while it is out.
  testing::Tally tally = testing::CallMany(*stub, 300);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_EQ(tally.per_backend.count("hp-0"), 0u);

  backends[0]->Signal(SIGUSR2);  // SERVING
  const auto restored = Clock::now();
  ASSERT_TRUE(testing::CallUntil(*stub, 30, [](const testing::Tally& t) {
    return t.per_backend.count("hp-0") > 0;
  }));
  const double back_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - restored).count();
  printf("%s, polls every 200 ms: out %.0f ms after NOT_SERVING (3 polls: 400-600 ms "
         "expected), back %.0f ms after SERVING (2 polls: 200-400 ms expected)\n",
         GetParam(), out_ms, back_ms);
}

INSTANTIATE_TEST_SUITE_P(Policies, HealthPollE2E,
                         ::testing::Values("lbkit_round_robin", "lbkit_least_request"),
                         [](const auto& info) { return std::string(info.param); });

TEST(HealthCheckE2E, AServerWithoutAHealthServiceIsHealthy) {
  Backends backends;
  backends.push_back(BackendProcess::Start("nohealth-0", {"--health_service=false"}));
  backends.push_back(BackendProcess::Start("nohealth-1", {"--health_service=false"}));
  auto channel =
      testing::MakeChannel(testing::Ipv4Target(backends), PollConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"nohealth-0", "nohealth-1"}));
  testing::Tally tally = testing::CallMany(*stub, 100);
  EXPECT_EQ(tally.per_backend["nohealth-0"], 50);
  EXPECT_EQ(tally.per_backend["nohealth-1"], 50);
}

TEST(HealthCheckE2E, WatchModeFromThePolicyConfig) {
  Backends backends;
  for (int i = 0; i < 2; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("hw-", i)));
  // No top-level healthCheckConfig: the policy's own healthCheck asks for
  // gRPC's streaming Watch.
  auto channel = testing::MakeChannel(
      testing::Ipv4Target(backends),
      R"({"loadBalancingConfig": [{"lbkit_round_robin": {"healthCheck": {}}}]})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"hw-0", "hw-1"}));
  backends[1]->Signal(SIGUSR1);
  EXPECT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("hw-1") == 0 && t.failed() == 0;
  }));
}

}  // namespace
}  // namespace lbkit
