// Bounded-load hashing (hashBalanceFactor). Slot counts are worked out by
// hand from the formula in Envoy's thread_aware_lb_impl.cc (hash_balance_factor).

#include "algorithms/bounded_load.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "algorithms/ring_hash.h"
#include "algorithms/xxhash64.h"
#include "gtest/gtest.h"

namespace lbkit::algorithms {
namespace {

TEST(BoundedLoad, SlotsFollowEnvoysFormula) {
  // ceil(1 * 1.25) = 2 total slots; 2 * 0.5 = 1.
  EXPECT_EQ(BoundedLoad::Slots(0, 125, 0.5), 1u);
  // ceil(100 * 1.25) = 125; 125 * 0.1 = 12.5 -> 13.
  EXPECT_EQ(BoundedLoad::Slots(99, 125, 0.1), 13u);
  // ceil(8 * 1.5) = 12; 12 / 3 = 4.
  EXPECT_EQ(BoundedLoad::Slots(7, 150, 1.0 / 3), 4u);
  // Never below one slot, however small the weight.
  EXPECT_EQ(BoundedLoad::Slots(0, 100, 0.001), 1u);
}

TEST(BoundedLoad, AnEndpointUnderItsBoundKeepsTheKey) {
  BoundedLoad bounded(125, {1, 1, 1, 1});
  // 40 in flight: slots = ceil(ceil(41 * 1.25) / 4) = ceil(52 / 4) = 13; the
  // hashed endpoint has 12, so a 13th is within the bound.
  std::vector<int64_t> in_flight = {12, 10, 9, 9};
  EXPECT_EQ(bounded.Choose(42, 0, 40, [&](size_t c) { return in_flight[c]; }), 0u);
  // At 13 it would exceed the bound: the call goes elsewhere.
  in_flight[0] = 13;
  EXPECT_NE(bounded.Choose(42, 0, 40, [&](size_t c) { return in_flight[c]; }), 0u);
}

TEST(BoundedLoad, AnOverflowingKeyAlwaysSpillsToTheSameAlternate) {
  BoundedLoad bounded(110, std::vector<uint32_t>(20, 1));
  std::vector<int64_t> in_flight(20, 0);
  in_flight[3] = 50;  // far over its bound; every other endpoint is idle
  std::map<size_t, int> alternates;
  for (uint64_t hash = 0; hash < 2000; ++hash) {
    const size_t first =
        bounded.Choose(hash, 3, 50, [&](size_t c) { return in_flight[c]; });
    EXPECT_NE(first, 3u);
    // Same hash, same alternate: spilled keys keep their cache locality.
    EXPECT_EQ(bounded.Choose(hash, 3, 50, [&](size_t c) { return in_flight[c]; }), first);
    ++alternates[first];
  }
  // Different keys spill to different endpoints (the random jump), not all
  // to the ring neighbour: each of the 19 gets roughly 2000/19 = 105.
  EXPECT_EQ(alternates.size(), 19u);
  for (const auto& [endpoint, count] : alternates) {
    EXPECT_GT(count, 50) << endpoint;
    EXPECT_LT(count, 170) << endpoint;
  }
}

TEST(BoundedLoad, WhenAllAreFullTheLeastLoadedRelativeToItsSlotsTakesIt) {
  // Weights 1:3: with 100 in flight and factor 100, total slots 101, slots
  // ceil(25.25) = 26 and ceil(75.75) = 76. Loads 40 and 90: overloads
  // 41/26 = 1.58 and 91/76 = 1.20, so the heavier-weighted one is chosen.
  BoundedLoad bounded(100, {1, 3});
  std::vector<int64_t> in_flight = {40, 90};
  EXPECT_EQ(bounded.Choose(7, 0, 100, [&](size_t c) { return in_flight[c]; }), 1u);
}

TEST(BoundedLoad, WeightsScaleTheBound) {
  BoundedLoad bounded(100, {1, 4});
  // 9 in flight: total slots 10; slots 2 and 8.
  std::vector<int64_t> in_flight = {2, 0};
  EXPECT_EQ(bounded.Choose(1, 0, 9, [&](size_t c) { return in_flight[c]; }), 1u);
  in_flight = {1, 7};
  EXPECT_EQ(bounded.Choose(1, 1, 9, [&](size_t c) { return in_flight[c]; }), 1u);
}

// Steady state with a fixed number of calls in flight and a Zipf-skewed key
// distribution (one hot key carries about 13% of the calls). Without a bound
// the hottest endpoint carries about 2.5x the mean; with factor 125 none
// exceeds ceil(1.25 x its share).
struct SkewResult {
  double max_over_mean_unbounded = 0;
  double max_over_mean_bounded = 0;
};

SkewResult RunSkewed(size_t endpoints, int concurrency, uint32_t factor) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < endpoints; ++i) keys.push_back("10.0.0." + std::to_string(i) + ":80");
  const HashRing ring =
      HashRing::Build(keys, std::vector<uint32_t>(endpoints, 1), 1024, 8388608);
  const BoundedLoad bounded(factor, std::vector<uint32_t>(endpoints, 1));

  std::mt19937_64 random(1234);
  std::vector<double> zipf_weights;
  for (int k = 1; k <= 1000; ++k) zipf_weights.push_back(1.0 / k);
  std::discrete_distribution<int> zipf(zipf_weights.begin(), zipf_weights.end());

  SkewResult result;
  for (bool bound : {false, true}) {
    std::vector<int64_t> in_flight(endpoints, 0);
    std::vector<size_t> calls;  // the endpoint of each call in flight
    int64_t peak = 0;
    for (int step = 0; step < 100000; ++step) {
      if (static_cast<int>(calls.size()) == concurrency) {
        const size_t done = random() % calls.size();
        --in_flight[calls[done]];
        calls[done] = calls.back();
        calls.pop_back();
      }
      const uint64_t hash = Xxh64("user-" + std::to_string(zipf(random)));
      size_t e = ring.entry(ring.Find(hash)).endpoint;
      if (bound) {
        e = bounded.Choose(hash, e, calls.size(), [&](size_t c) { return in_flight[c]; });
      }
      ++in_flight[e];
      calls.push_back(e);
      if (static_cast<int>(calls.size()) == concurrency) peak = std::max(peak, in_flight[e]);
    }
    const double ratio = peak / (static_cast<double>(concurrency) / endpoints);
    (bound ? result.max_over_mean_bounded : result.max_over_mean_unbounded) = ratio;
  }
  return result;
}

TEST(BoundedLoad, KeepsEveryEndpointWithinTheFactorUnderSkew) {
  const SkewResult r = RunSkewed(10, 1000, 125);
  printf("skewed keys, 10 endpoints, 1000 in flight: max/mean %.2f unbounded, %.2f with "
         "hashBalanceFactor 125\n",
         r.max_over_mean_unbounded, r.max_over_mean_bounded);
  EXPECT_GT(r.max_over_mean_unbounded, 1.5);  // the skew is real
  EXPECT_LE(r.max_over_mean_bounded, 1.25);   // ceil(1250 / 10) = 125 = 1.25 x 100
}

}  // namespace
}  // namespace lbkit::algorithms
