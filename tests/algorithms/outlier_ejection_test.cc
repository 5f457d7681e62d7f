// The outlier detector's arithmetic: consecutive counters, the ejection
// budget, ejection times and gRFC A50's interval sweep, worked by hand.

#include "algorithms/outlier_ejection.h"

#include "gtest/gtest.h"

#include <string>

namespace lbkit::algorithms {
namespace {

TEST(OutlierCounters, ConsecutiveErrorsFireAtTheThresholdAndStartOver) {
  OutlierConfig config;  // consecutive_errors 5
  OutlierCounters c;
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(c.Record(CallResult::Error(false), config)) << i;
  EXPECT_TRUE(c.Record(CallResult::Error(false), config));
  // Counting starts over: four more are not enough.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(c.Record(CallResult::Error(false), config));
  // A success, or a failure that is not an error code, breaks the run.
  EXPECT_FALSE(c.Record(CallResult::Success(), config));
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(c.Record(CallResult::Error(false), config));
  EXPECT_FALSE(c.Record(CallResult::OtherFailure(), config));
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(c.Record(CallResult::Error(false), config));
  EXPECT_TRUE(c.Record(CallResult::Error(false), config));
}

TEST(OutlierCounters, GatewayErrorsCountSeparately) {
  OutlierConfig config;
  config.consecutive_errors = 0;
  config.consecutive_gateway_errors = 3;
  OutlierCounters c;
  EXPECT_FALSE(c.Record(CallResult::Error(true), config));
  EXPECT_FALSE(c.Record(CallResult::Error(true), config));
  // A non-gateway error breaks a gateway run.
  EXPECT_FALSE(c.Record(CallResult::Error(false), config));
  EXPECT_FALSE(c.Record(CallResult::Error(true), config));
  EXPECT_FALSE(c.Record(CallResult::Error(true), config));
  EXPECT_TRUE(c.Record(CallResult::Error(true), config));
}

TEST(OutlierCounters, LocalOriginFailuresSplitOrNot) {
  OutlierConfig unsplit;
  unsplit.consecutive_errors = 2;
  OutlierCounters a;
  // Unsplit: a connection failure is an error like any other.
  EXPECT_FALSE(a.Record(CallResult::LocalFailure(), unsplit));
  EXPECT_TRUE(a.Record(CallResult::LocalFailure(), unsplit));

  OutlierConfig split = unsplit;
  split.split_local_origin = true;
  split.consecutive_local_origin_failures = 2;
  OutlierCounters b;
  EXPECT_FALSE(b.Record(CallResult::LocalFailure(), split));
  b.RecordConnected();  // a call that reached the endpoint breaks the run
  EXPECT_FALSE(b.Record(CallResult::LocalFailure(), split));
  // And the server's own errors do not add to local failures.
  EXPECT_FALSE(b.Record(CallResult::Error(false), split));
  EXPECT_TRUE(b.Record(CallResult::LocalFailure(), split));
}

TEST(OutlierCounters, IntervalBuckets) {
  OutlierConfig config;
  OutlierCounters c;
  c.Record(CallResult::Success(), config);
  c.Record(CallResult::Error(false), config);
  c.Record(CallResult::OtherFailure(), config);
  EXPECT_EQ(c.TakeInterval(), (std::pair<uint64_t, uint64_t>{1, 2}));
  EXPECT_EQ(c.TakeInterval(), (std::pair<uint64_t, uint64_t>{0, 0}));
}

TEST(EjectionBudget, MaxEjectionPercentAlwaysAllowsOne) {
  OutlierConfig config;  // max 10%
  EXPECT_TRUE(MayEject(0, 4, config));    // always one
  EXPECT_FALSE(MayEject(1, 4, config));   // 2 of 4 = 50% > 10%
  EXPECT_TRUE(MayEject(1, 20, config));   // 2 of 20 = 10%
  EXPECT_FALSE(MayEject(2, 20, config));  // 3 of 20 = 15%
  config.max_ejection_percent = 50;
  EXPECT_TRUE(MayEject(1, 4, config));    // 2 of 4 = 50%
  EXPECT_FALSE(MayEject(2, 4, config));   // 3 of 4 = 75%
  EXPECT_FALSE(MayEject(1, 1, config));   // nothing left
}

TEST(EjectionBudget, MinHealthPercentSuspendsEjection) {
  OutlierConfig config;
  config.max_ejection_percent = 100;
  config.min_health_percent = 50;
  EXPECT_TRUE(MayEject(0, 4, config));   // 3 of 4 left
  EXPECT_TRUE(MayEject(1, 4, config));   // 2 of 4 left = 50%
  EXPECT_FALSE(MayEject(2, 4, config));  // 1 of 4 left = 25% < 50%
}

TEST(EjectionTime, GrowsWithEachEjectionUpToTheCap) {
  OutlierConfig config;  // base 30 s, max 300 s
  EXPECT_EQ(EjectionMs(1, config), 30000);
  EXPECT_EQ(EjectionMs(2, config), 60000);
  EXPECT_EQ(EjectionMs(10, config), 300000);
  EXPECT_EQ(EjectionMs(1000, config), 300000);
  config.max_ejection_ms = 10000;  // below base: the cap is base
  EXPECT_EQ(EjectionMs(3, config), 30000);
}

TEST(IntervalSweep, SuccessRateAsGrfcA50) {
  OutlierConfig config;
  config.max_ejection_percent = 100;
  config.success_rate = OutlierConfig::SuccessRate{};  // 1.9 stdev, 5 hosts, 100 calls
  // Rates 1, 1, 1, 1, 0.5 (200 calls each): mean 0.9, population stdev 0.2,
  // threshold 0.9 - 0.38 = 0.52: the 0.5 one goes.
  std::vector<IntervalStats> stats(5, IntervalStats{200, 0, false});
  stats[4] = {100, 100, false};
  EXPECT_EQ(SweepInterval(stats, config, [] { return 0; }), (std::vector<size_t>{4}));
  // Under the volume (99 calls) it is not a candidate: 4 hosts < 5.
  stats[4] = {50, 49, false};
  EXPECT_TRUE(SweepInterval(stats, config, [] { return 0; }).empty());
  // Enforcement 0%: never.
  stats[4] = {100, 100, false};
  config.success_rate->enforcement_percentage = 0;
  EXPECT_TRUE(SweepInterval(stats, config, [] { return 0; }).empty());
}

TEST(IntervalSweep, FailurePercentageWithinTheBudget) {
  OutlierConfig config;  // max 10%: one of these five
  config.failure_percentage = OutlierConfig::FailurePercentage{};  // > 85%, 5 hosts, 50 calls
  std::vector<IntervalStats> stats(5, IntervalStats{60, 0, false});
  stats[1] = {5, 55, false};  // 91.7% failing
  stats[3] = {0, 60, false};  // 100%
  stats[2] = {9, 51, false};  // 85%: not above the threshold
  EXPECT_EQ(SweepInterval(stats, config, [] { return 0; }), (std::vector<size_t>{1}));
  config.max_ejection_percent = 40;
  EXPECT_EQ(SweepInterval(stats, config, [] { return 0; }), (std::vector<size_t>{1, 3}));
  // Already ejected endpoints count against the budget and are skipped
  // (and are no candidates: 4 remain, so the minimum goes down to 4).
  stats[1].ejected = true;
  config.failure_percentage->minimum_hosts = 4;
  EXPECT_EQ(SweepInterval(stats, config, [] { return 0; }), (std::vector<size_t>{3}));
}

}  // namespace
}  // namespace lbkit::algorithms
