#include "algorithms/health_thresholds.h"

#include "gtest/gtest.h"

#include <string>

namespace lbkit::algorithms {
namespace {

using State = HealthThresholds::State;

TEST(HealthThresholds, FirstResultDecidesThenRunsFlip) {
  HealthThresholds h(3, 2);
  EXPECT_EQ(h.state(), State::kUnknown);
  EXPECT_TRUE(h.Record(true));
  EXPECT_EQ(h.state(), State::kHealthy);
  // Two failures, a success: the run is broken.
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(true));
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_TRUE(h.Record(false));  // three in a row
  EXPECT_EQ(h.state(), State::kUnhealthy);
  EXPECT_FALSE(h.Record(true));  // one of two
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(true));
  EXPECT_TRUE(h.Record(true));
  EXPECT_EQ(h.state(), State::kHealthy);
}

TEST(HealthThresholds, AFirstFailureIsUnhealthyAtOnce) {
  HealthThresholds h(3, 2);
  EXPECT_TRUE(h.Record(false));
  EXPECT_EQ(h.state(), State::kUnhealthy);
  EXPECT_FALSE(h.Record(true));
  EXPECT_TRUE(h.Record(true));
}

TEST(HealthThresholds, ThresholdsOfOneFlipOnEveryChange) {
  HealthThresholds h(0, 0);  // treated as 1
  EXPECT_TRUE(h.Record(true));
  EXPECT_TRUE(h.Record(false));
  EXPECT_TRUE(h.Record(true));
}

}  // namespace
}  // namespace lbkit::algorithms
