// Slow start in lbkit_round_robin and lbkit_least_request on the fake
// clock: Envoy's weight factor max(minWeightPercent, (t / window)^(1 /
// aggression)), a fourth endpoint added under traffic ramping up over the
// window instead of taking its full share at once, and config errors.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "policies/common/slow_start.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using policies::SlowStartParams;
using testing::MakeAddresses;
using testing::ParseConfig;
using testing::PolicyHarness;
using Seconds = std::chrono::seconds;

const std::vector<std::string> kThree = {"127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"};
const std::vector<std::string> kFour = {"127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003",
                                        "127.0.0.1:5004"};

TEST(SlowStartFactor, FollowsEnvoysFormula) {
  SlowStartParams p;
  p.window = grpc_core::Duration::Seconds(100);
  EXPECT_DOUBLE_EQ(p.Factor(grpc_core::Duration::Zero()), 0.1);  // minWeightPercent 10
  EXPECT_DOUBLE_EQ(p.Factor(grpc_core::Duration::Seconds(50)), 0.5);
  EXPECT_DOUBLE_EQ(p.Factor(grpc_core::Duration::Seconds(100)), 1.0);
  p.aggression = 2;  // square root: faster at first
  EXPECT_DOUBLE_EQ(p.Factor(grpc_core::Duration::Seconds(25)), 0.5);
  p.min_weight_percent = 0;
  p.aggression = 1;
  // Envoy counts at least one second.
  EXPECT_DOUBLE_EQ(p.Factor(grpc_core::Duration::Zero()), 0.01);
}

TEST(SlowStartConfig, ErrorsNameTheField) {
  auto config = ParseConfig("lbkit_round_robin",
                            R"({"slowStart": {"window": "0s", "aggression": 0,
                                              "minWeightPercent": 150}})");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(std::string(config.status().message()),
            "errors validating lbkit_round_robin LB policy config: [field:slowStart.aggression "
            "error:must be more than 0; field:slowStart.minWeightPercent error:must be in [0, "
            "100]; field:slowStart.window error:must be more than 0]");
  config = ParseConfig("lbkit_least_request", R"({"slowStart": {}})");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(std::string(config.status().message()),
            "errors validating lbkit_least_request LB policy config: [field:slowStart.window "
            "error:field not present]");
}

// The share of the fourth endpoint over `n` picks, in percent.
double NewcomerShare(PolicyHarness& h, int n) {
  const std::map<std::string, int> picks = h.PickMany(n);
  auto it = picks.find("127.0.0.1:5004");
  return it == picks.end() ? 0 : 100.0 * it->second / n;
}

class SlowStartTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SlowStartTest, ANewEndpointRampsUpOverTheWindow) {
  const std::string config = R"({"slowStart": {"window": "100s"}})";
  PolicyHarness h(GetParam());
  ASSERT_TRUE(h.Update(MakeAddresses(kThree), config).ok());
  for (const auto& a : kThree) h.SetState(a, GRPC_CHANNEL_READY);
  h.record().event_engine.Advance(Seconds(100));  // the first three are warm
  EXPECT_EQ(h.record().event_engine.pending(), 0u);  // no timer while nothing ramps

  ASSERT_TRUE(h.Update(MakeAddresses(kFour), config).ok());
  h.SetState("127.0.0.1:5004", GRPC_CHANNEL_READY);
  std::vector<double> curve;
  for (int t = 0; t <= 100; t += 25) {
    curve.push_back(NewcomerShare(h, 20000));
    printf("%s: t=%3d s newcomer share %.2f%%\n", GetParam(), t, curve.back());
    if (t < 100) h.record().event_engine.Advance(Seconds(25));
  }
  // Round robin: factor f against three at 1 -> f / (3 + f); least request
  // with idle endpoints shares in proportion to weight too, drawn twice.
  EXPECT_LT(curve.front(), 8.0);                   // 0.1 / 3.1 = 3.2%
  for (size_t i = 1; i < curve.size(); ++i) EXPECT_GT(curve[i], curve[i - 1]);
  EXPECT_NEAR(curve.back(), 25.0, 1.5);            // full share after the window
  if (std::string(GetParam()) == "lbkit_round_robin") {
    EXPECT_NEAR(curve[2], 100.0 * 0.5 / 3.5, 1.5);  // half way: 14.3%
  }
  EXPECT_EQ(h.record().event_engine.pending(), 0u);  // the ramp is over: no more ticks
}

TEST_P(SlowStartTest, WithoutSlowStartANewEndpointTakesItsShareAtOnce) {
  PolicyHarness h(GetParam());
  ASSERT_TRUE(h.Update(MakeAddresses(kThree), "{}").ok());
  for (const auto& a : kThree) h.SetState(a, GRPC_CHANNEL_READY);
  ASSERT_TRUE(h.Update(MakeAddresses(kFour), "{}").ok());
  h.SetState("127.0.0.1:5004", GRPC_CHANNEL_READY);
  EXPECT_NEAR(NewcomerShare(h, 20000), 25.0, 1.5);
  EXPECT_EQ(h.record().event_engine.pending(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, SlowStartTest,
                         ::testing::Values("lbkit_round_robin", "lbkit_least_request"));

}  // namespace
}  // namespace lbkit
