#include "algorithms/least_request.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "algorithms/rtt_ewma.h"
#include "algorithms/random.h"
#include "gtest/gtest.h"

namespace lbkit::algorithms {
namespace {

constexpr auto kNoEwma = [](size_t) { return 0.0; };

std::vector<int> Shares(const LeastRequestChooser& chooser,
                        const std::vector<int64_t>& in_flight, int picks) {
  std::vector<int> counts(chooser.size(), 0);
  for (int i = 0; i < picks; ++i) {
    ++counts[chooser.Choose([&](size_t j) { return in_flight[j]; }, kNoEwma)];
  }
  return counts;
}

TEST(LeastRequestChooser, BusyEndpointIsNeverChosenWhileOthersAreIdle) {
  SeedThreadRandom(1);
  LeastRequestChooser chooser({1, 1, 1, 1}, {2, 1.0});
  auto counts = Shares(chooser, {100, 0, 0, 0}, 20000);
  EXPECT_EQ(counts[0], 0);
  for (int i = 1; i < 4; ++i) EXPECT_NEAR(counts[i], 20000 / 3, 20000 * 0.02) << i;
}

// Tolerance: 100,000 draws over 5 equal endpoints; each share's standard
// deviation is about 0.13%, so +-1% is over 7 sigma.
TEST(LeastRequestChooser, EqualEndpointsShareEvenly) {
  SeedThreadRandom(2);
  for (int choices : {2, 3, 10}) {
    LeastRequestChooser chooser({1, 1, 1, 1, 1}, {choices, 1.0});
    auto counts = Shares(chooser, {0, 0, 0, 0, 0}, 100000);
    for (int c : counts) EXPECT_NEAR(c, 20000, 1000) << choices << " choices";
  }
}

TEST(LeastRequestChooser, LowestInFlightAmongCandidatesWins) {
  SeedThreadRandom(3);
  // With 2 choices among 4, the most loaded endpoint is chosen only when it
  // is never a candidate... which cannot happen for the lightest: the
  // lightest wins every draw it is part of, i.e. half of them.
  LeastRequestChooser chooser({1, 1, 1, 1}, {2, 1.0});
  auto counts = Shares(chooser, {3, 2, 1, 0}, 60000);
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[3], 30000, 1200);  // in 3 of 6 pairs
  EXPECT_NEAR(counts[2], 20000, 1200);  // 2 of 6
  EXPECT_NEAR(counts[1], 10000, 1200);  // 1 of 6
}

// With every endpoint a candidate (choiceCount >= endpoints), the cheapest
// endpoints share the picks by weight, whatever their position.
TEST(LeastRequestChooser, TiesAmongAllCandidatesAreBrokenByWeight) {
  SeedThreadRandom(11);
  LeastRequestChooser equal({1, 1, 1}, {3, 1.0});
  auto counts = Shares(equal, {0, 1, 0}, 30000);
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0], 15000, 600);
  EXPECT_NEAR(counts[2], 15000, 600);
  // Weights {10, 1, 1}, endpoint 0 busy: the two idle ones tie at cost 0
  // and have equal weights, so they share evenly.
  LeastRequestChooser weighted({10, 1, 1}, {3, 1.0});
  counts = Shares(weighted, {5, 0, 0}, 30000);
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1], 15000, 600);
}

TEST(LeastRequestChooser, IdleEndpointsShareInProportionToWeight) {
  SeedThreadRandom(4);
  LeastRequestChooser two({3, 1}, {2, 1.0});
  auto counts = Shares(two, {0, 0}, 100000);
  EXPECT_NEAR(counts[0], 75000, 1500);
  LeastRequestChooser four({1, 2, 3, 4}, {2, 1.0});
  counts = Shares(four, {0, 0, 0, 0}, 100000);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts[i], 10000 * (i + 1), 1500) << i;
}

TEST(LeastRequestChooser, BusyCostIsEnvoysInverseEffectiveWeight) {
  // cost = (active + 1)^bias / weight; idle costs 0 when weights differ.
  LeastRequestChooser bias1({2, 1}, {2, 1.0});
  EXPECT_DOUBLE_EQ(bias1.Cost(0, 0, 0), 0.0);
  EXPECT_DOUBLE_EQ(bias1.Cost(0, 1, 0), 1.0);   // 2 / 2
  EXPECT_DOUBLE_EQ(bias1.Cost(1, 1, 0), 2.0);   // 2 / 1
  EXPECT_DOUBLE_EQ(bias1.Cost(0, 3, 0), 2.0);   // 4 / 2
  LeastRequestChooser half({4, 1}, {2, 0.5});
  EXPECT_DOUBLE_EQ(half.Cost(0, 3, 0), std::sqrt(4.0) / 4);
  LeastRequestChooser none({4, 1}, {2, 0.0});
  EXPECT_DOUBLE_EQ(none.Cost(0, 7, 0), 1.0 / 4);  // bias 0: plain weights
  // Equal weights: the plain in-flight count, whatever the bias.
  LeastRequestChooser equal({1, 1}, {2, 2.0});
  EXPECT_DOUBLE_EQ(equal.Cost(0, 5, 0), 5.0);
  // EWMA mode: rtt * (active + 1) / weight.
  EXPECT_DOUBLE_EQ(bias1.Cost(0, 1, 1000.0), 1000.0);
}

TEST(LeastRequestChooser, BusyWeightedEndpointsCarryLoadInProportionToWeight) {
  // Weights {2, 1} with in-flight {2, 1}: 3/2 = 1.5 < 2/1 = 2, so the heavy
  // one still wins; at {4, 1}: 5/2 = 2.5 > 2, the light one does.
  LeastRequestChooser chooser({2, 1}, {2, 1.0});
  auto counts = Shares(chooser, {2, 1}, 1000);
  EXPECT_EQ(counts[0], 1000);
  counts = Shares(chooser, {4, 1}, 1000);
  EXPECT_EQ(counts[1], 1000);
}

TEST(LeastRequestChooser, DrawsDistinctCandidatesAndClampsChoices) {
  SeedThreadRandom(5);
  LeastRequestChooser chooser(std::vector<uint32_t>(20, 1), {50, 1.0});
  size_t drawn[LeastRequestChooser::kMaxChoices];
  for (int trial = 0; trial < 1000; ++trial) {
    const int k = chooser.Draw(drawn);
    ASSERT_EQ(k, 10);  // clamped to kMaxChoices
    std::set<size_t> distinct(drawn, drawn + k);
    ASSERT_EQ(distinct.size(), 10u);
  }
  LeastRequestChooser small({1, 1, 1}, {5, 1.0});
  EXPECT_EQ(small.Draw(drawn), 3);
}

TEST(ThreadRandom, SeedingMakesTheSequenceReproducible) {
  SeedThreadRandom(42);
  const uint64_t a = ThreadRandom(), b = ThreadRandom();
  SeedThreadRandom(42);
  EXPECT_EQ(ThreadRandom(), a);
  EXPECT_EQ(ThreadRandom(), b);
}

constexpr RttEwma::Mode kPeak = RttEwma::Mode::kPeak;
constexpr RttEwma::Mode kMean = RttEwma::Mode::kMean;

// tower's PeakEwma, step by step.
TEST(RttEwma, PeakSlowerSampleCountsAtOnceAndDecaysBackOverDecay) {
  constexpr double kDecay = 10e9;  // 10 s
  RttEwma ewma(kPeak, kDecay, 30e6, /*now_ns=*/0);
  EXPECT_DOUBLE_EQ(ewma.Estimate(0), 30e6);
  // Peak: a slower sample replaces the estimate immediately.
  ewma.Observe(200e6, 1000);
  EXPECT_DOUBLE_EQ(ewma.Estimate(1000), 200e6);
  // Idle for one decay constant: down by a factor e.
  EXPECT_NEAR(ewma.Estimate(1000 + static_cast<int64_t>(kDecay)), 200e6 / M_E, 200);
  // A faster sample after one decay constant blends with weight 1 - 1/e.
  const int64_t t = 1000 + static_cast<int64_t>(kDecay);
  ewma.Observe(10e6, t);
  const double w = std::exp(-1.0);
  EXPECT_NEAR(ewma.Estimate(t), 200e6 * w + 10e6 * (1 - w), 200);
  // Many fast samples close together barely move it at once: the default
  // RTT is tower's starting estimate, not a placeholder...
  RttEwma fresh(kPeak, kDecay, 100e6, 0);
  fresh.Observe(1e6, 1000000);  // 1 ms later
  EXPECT_GT(fresh.Estimate(1000000), 99e6);
  // ...but the estimate converges to the fast rtt over several decays.
  for (int i = 1; i <= 50; ++i) fresh.Observe(1e6, i * static_cast<int64_t>(kDecay));
  EXPECT_NEAR(fresh.Estimate(50 * static_cast<int64_t>(kDecay)), 1e6, 1e4);
}

// lbkit's latencyEwma: the first sample replaces the default, slower
// samples blend in like faster ones (no peak rule), and each weighs at
// least a twentieth, or its time weight when that is more.
TEST(RttEwma, MeanStartsFromTheFirstSampleAndBlendsBothWays) {
  constexpr double kDecay = 1e9;  // 1 s
  RttEwma ewma(kMean, kDecay, 30e6, 0);
  EXPECT_DOUBLE_EQ(ewma.Estimate(0), 30e6);
  EXPECT_DOUBLE_EQ(ewma.Observe(1e6, 1000), 1e6);
  EXPECT_DOUBLE_EQ(ewma.Estimate(1000), 1e6);
  // A 50 ms outlier 1 ms later (time weight 0.1%) moves it by a twentieth.
  EXPECT_NEAR(ewma.Observe(50e6, 1001000), 0.95 * 1e6 + 0.05 * 50e6, 1);
  // A sample after a quiet second weighs 1 - 1/e.
  const double before = ewma.Estimate(1001000);
  const double w = std::exp(-1.0);
  EXPECT_NEAR(ewma.Observe(1e6, 1001000 + 1000000000), before * w + 1e6 * (1 - w), 1);
  // A busy backend that turns 3x slower: 20 calls 1 ms apart take the
  // estimate from 1 ms to 3 - 2 * 0.95^20 ms.
  RttEwma slow(kMean, kDecay, 30e6, 0);
  slow.Observe(1e6, 0);
  for (int i = 1; i <= 20; ++i) slow.Observe(3e6, i * 1000000);
  EXPECT_NEAR(slow.Estimate(20 * 1000000), 3e6 - 2e6 * std::pow(0.95, 20), 1e3);
}

// kMean's default is a placeholder until a sample or a failed call; kPeak's
// (tower's) is an estimate from the start.
TEST(RttEwma, SeededByASampleOrAFailure) {
  RttEwma mean(kMean, 1e9, 30e6, 0);
  EXPECT_FALSE(mean.Seeded());
  mean.ObserveFailure(10);
  EXPECT_TRUE(mean.Seeded());
  EXPECT_DOUBLE_EQ(mean.Estimate(10), 30e6);  // a failure keeps the default
  RttEwma sampled(kMean, 1e9, 30e6, 0);
  sampled.Observe(2e6, 10);
  EXPECT_TRUE(sampled.Seeded());
  EXPECT_TRUE(RttEwma(kPeak, 1e9, 30e6, 0).Seeded());
}

TEST(RttEwma, EstimateNeverReachesZero) {
  for (RttEwma::Mode mode : {kPeak, kMean}) {
    RttEwma ewma(mode, 1e9, 30e6, 0);
    // 10,000 decay periods idle: the product underflows, the estimate does not.
    EXPECT_GE(ewma.Estimate(static_cast<int64_t>(1e13)), 1.0);
  }
}

TEST(RttEwma, ConfigureRestartsOnlyWhenParametersChange) {
  RttEwma ewma;
  ewma.Configure(kPeak, 1e9, 5e6, 0);
  ewma.Observe(50e6, 10);
  ewma.Configure(kPeak, 1e9, 5e6, 20);  // same: keeps what was learned
  EXPECT_DOUBLE_EQ(ewma.Estimate(10), 50e6);
  ewma.Configure(kPeak, 2e9, 5e6, 30);  // changed: starts again
  EXPECT_DOUBLE_EQ(ewma.Estimate(30), 5e6);
  ewma.Configure(kMean, 2e9, 5e6, 40);  // another estimator: starts again
  EXPECT_DOUBLE_EQ(ewma.Estimate(40), 5e6);
  EXPECT_DOUBLE_EQ(ewma.Observe(2e6, 50), 2e6);  // and is seeded by its first sample
}

TEST(ExpNegative, MatchesStdExpToARelativeMillionth) {
  double worst = 0;
  for (double x = 0; x < 700; x += 1e-4 * (1 + x)) {
    const double expected = std::exp(-x);
    worst = std::max(worst, std::fabs(ExpNegative(x) - expected) / expected);
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_EQ(ExpNegative(1e9), 0.0);
  EXPECT_EQ(ExpNegative(0), 1.0);
}

// latencyEwma's cost orders candidates as rtt * sqrt(in flight + 1): a
// backend 3x slower loses to a fast one until the fast one has 8 more
// calls in flight than it (Linkerd's rtt * (in flight + 1): 2 more).
TEST(LeastRequestChooser, SquaredLatencyWeighsLatencyOverLoad) {
  LeastRequestOptions options;
  options.choice_count = 2;
  options.squared_latency = true;
  LeastRequestChooser chooser({1, 1}, options);
  auto winner = [&](int64_t fast_in_flight, int64_t slow_in_flight) {
    return chooser.Choose(
        [&](size_t i) { return i == 0 ? fast_in_flight : slow_in_flight; },
        [](size_t i) { return i == 0 ? 1e6 : 3e6; });
  };
  EXPECT_EQ(winner(0, 0), 0u);
  EXPECT_EQ(winner(7, 0), 0u);  // 1 * sqrt(8) < 3 * sqrt(1)
  EXPECT_EQ(winner(9, 0), 1u);  // 1 * sqrt(10) > 3
  options.squared_latency = false;
  LeastRequestChooser linear({1, 1}, options);
  EXPECT_EQ(linear.Choose([](size_t i) { return i == 0 ? int64_t{3} : int64_t{0}; },
                          [](size_t i) { return i == 0 ? 1e6 : 3e6; }),
            1u);  // 1 * 4 > 3 * 1
}

}  // namespace
}  // namespace lbkit::algorithms
