// Locality arithmetic against Envoy's and Istio's worked examples
// (Envoy's load_balancer_impl.cc), each computed by hand in the comments.

#include "algorithms/locality.h"

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace lbkit::algorithms {
namespace {

std::vector<uint32_t> Load(std::vector<PriorityHealth> levels, uint32_t panic = 50) {
  return ComputePriorityLoad(levels, 140, panic).percent;
}

TEST(PriorityLoad, TwoLevelsAcrossHealthyFractions) {
  // 10 endpoints per level, the second all healthy. health0 = min(100, 1.4 x h).
  EXPECT_EQ(Load({{10, 10}, {10, 10}}), (std::vector<uint32_t>{100, 0}));  // 100%
  EXPECT_EQ(Load({{8, 10}, {10, 10}}), (std::vector<uint32_t>{100, 0}));   // 80%: 112 -> 100
  EXPECT_EQ(Load({{5, 10}, {10, 10}}), (std::vector<uint32_t>{70, 30}));   // 50%: 70
  EXPECT_EQ(Load({{2, 10}, {10, 10}}), (std::vector<uint32_t>{28, 72}));   // 20%: 28
  EXPECT_EQ(Load({{0, 10}, {10, 10}}), (std::vector<uint32_t>{0, 100}));   // 0%
}

TEST(PriorityLoad, ThreeLevelsAsEnvoysExamples) {
  // 7/10/10: health 98/100/100 -> 98/2/0.
  EXPECT_EQ(Load({{7, 10}, {10, 10}, {10, 10}}), (std::vector<uint32_t>{98, 2, 0}));
  // 5/4/10: health 70/56/100 -> 70, then min(30, 56) = 30 -> 70/30/0; no
  // panic although P1 is at 40%: total availability is 100.
  const PriorityLoad l = ComputePriorityLoad({{5, 10}, {4, 10}, {10, 10}}, 140, 50);
  EXPECT_EQ(l.percent, (std::vector<uint32_t>{70, 30, 0}));
  EXPECT_EQ(l.panic, (std::vector<bool>{false, false, false}));
  // 2/5/0: health 28/70/0, NTA 98: 2800/98 = 28, 7000/98 = 71, the 1 left
  // goes to P0 -> 29/71/0. P0 (20% healthy) panics, P1 (50%) does not.
  const PriorityLoad m = ComputePriorityLoad({{2, 10}, {5, 10}, {0, 10}}, 140, 50);
  EXPECT_EQ(m.percent, (std::vector<uint32_t>{29, 71, 0}));
  EXPECT_EQ(m.panic, (std::vector<bool>{true, false, true}));
  // 80% / 50% / 20% at the first level, the rest healthy.
  EXPECT_EQ(Load({{8, 10}, {5, 10}, {10, 10}}), (std::vector<uint32_t>{100, 0, 0}));
  EXPECT_EQ(Load({{2, 10}, {2, 10}, {10, 10}}), (std::vector<uint32_t>{28, 28, 44}));
  EXPECT_EQ(Load({{0, 10}, {0, 10}, {10, 10}}), (std::vector<uint32_t>{0, 0, 100}));
}

TEST(PriorityLoad, PanicWhenEveryLevelIsBelowTheThreshold) {
  // 2/3 healthy of 10 each: NTA 70, both under 50% -> by endpoint count.
  const PriorityLoad l = ComputePriorityLoad({{2, 10}, {3, 10}}, 140, 50);
  EXPECT_EQ(l.percent, (std::vector<uint32_t>{50, 50}));
  EXPECT_EQ(l.panic, (std::vector<bool>{true, true}));
  // Uneven sizes: 3 and 7 endpoints, none healthy -> 30/70.
  EXPECT_EQ(Load({{0, 3}, {0, 7}}), (std::vector<uint32_t>{30, 70}));
  // Panic threshold 0 turns panic off: nothing healthy -> all to P0.
  EXPECT_EQ(Load({{0, 3}, {0, 7}}, 0), (std::vector<uint32_t>{100, 0}));
  // 1 of 3 local healthy (33% < 50) but the next level is fine: no panic;
  // health 46 -> 46/54.
  EXPECT_EQ(Load({{1, 3}, {2, 2}}), (std::vector<uint32_t>{46, 54}));
}

TEST(PriorityLoad, TheEndToEndZones) {
  // The e2e scenario: zone a 3, zone b 2, other region 2. One of zone a's
  // three down: health min(100, 140 x 2 / 3 = 93) -> 93/7/0.
  EXPECT_EQ(Load({{2, 3}, {2, 2}, {2, 2}}), (std::vector<uint32_t>{93, 7, 0}));
  EXPECT_EQ(Load({{0, 3}, {2, 2}, {2, 2}}), (std::vector<uint32_t>{0, 100, 0}));
  EXPECT_EQ(Load({{0, 3}, {0, 2}, {2, 2}}), (std::vector<uint32_t>{0, 0, 100}));
}

TEST(LocalityWeight, EnvoysExample) {
  // Localities 5/10 and 10/10 healthy, weights 1 and 1: 0.7 and 1 ->
  // 41.2% / 58.8%.
  const double a = EffectiveLocalityWeight(1, 5, 10, 140);
  const double b = EffectiveLocalityWeight(1, 10, 10, 140);
  EXPECT_DOUBLE_EQ(a, 0.7);
  EXPECT_DOUBLE_EQ(b, 1.0);
  EXPECT_NEAR(a / (a + b), 0.412, 0.001);
}

TEST(LocalityMatches, IstioPatterns) {
  const LocalityName l{"us-east", "us-east-1a", "rack1"};
  EXPECT_TRUE(LocalityMatches("us-east", l));
  EXPECT_TRUE(LocalityMatches("us-east/*", l));
  EXPECT_TRUE(LocalityMatches("us-east/us-east-1a/*", l));
  EXPECT_TRUE(LocalityMatches("*", l));
  EXPECT_TRUE(LocalityMatches("us-east/us-east-1a/rack1", l));
  EXPECT_FALSE(LocalityMatches("us-east/us-east-1b/*", l));
  EXPECT_FALSE(LocalityMatches("us-west", l));
  EXPECT_FALSE(LocalityMatches("us-east/us-east-1a/rack2", l));
}

TEST(Proximity, OrderAndFailover) {
  const LocalityName client{"r1", "z1", "s1"};
  EXPECT_EQ(ProximityPriority(client, {"r1", "z1", "s1"}, {}), 0u);
  EXPECT_EQ(ProximityPriority(client, {"r1", "z1", "s2"}, {}), 1u);
  EXPECT_EQ(ProximityPriority(client, {"r1", "z2", "s1"}, {}), 2u);
  EXPECT_EQ(ProximityPriority(client, {"r2", "z1", "s1"}, {}), 3u);
  // failover r1 -> r3: r3 is the next region, r2 after it.
  const std::vector<FailoverRule> rules = {{"r9", "r2"}, {"r1", "r3"}};
  EXPECT_EQ(ProximityPriority(client, {"r3", "a", ""}, rules), 3u);
  EXPECT_EQ(ProximityPriority(client, {"r2", "a", ""}, rules), 4u);
  EXPECT_EQ(ProximityPriority(client, {"r1", "z2", ""}, rules), 2u);
}

TEST(FailoverPriority, LeadingLabelsMatched) {
  // Keys [region, version]; client region r1, version v1.
  const std::vector<std::optional<std::string>> client = {"r1", "v1"};
  auto priority = [&](std::vector<std::optional<std::string>> endpoint) {
    return LabelPriority(
        2, [&](size_t i) { return client[i]; }, [&](size_t i) { return endpoint[i]; });
  };
  EXPECT_EQ(priority({"r1", "v1"}), 0u);            // both match
  EXPECT_EQ(priority({"r1", "v2"}), 1u);            // first mismatch at 1: 2 - 1
  EXPECT_EQ(priority({"r2", "v1"}), 2u);            // first mismatch at 0
  EXPECT_EQ(priority({"r1", std::nullopt}), 1u);    // absent on one side: no match
  // Absent on both sides compares "" with "" (Istio's map lookups): a match.
  EXPECT_EQ(LabelPriority(
                1, [](size_t) { return std::optional<std::string>(); },
                [](size_t) { return std::optional<std::string>(); }),
            0u);
  EXPECT_EQ(CompactPriorities({2 * 5 + 3, 0 * 5 + 0, 1 * 5 + 0, 0 * 5 + 2}),
            (std::vector<uint32_t>{3, 0, 2, 1}));
}

TEST(Distribute, IstioWeights) {
  const std::vector<LocalityName> localities = {
      {"r1", "z1", ""}, {"r1", "z2", ""}, {"r1", "z3", ""}, {"r2", "z1", ""}};
  const std::vector<uint64_t> endpoints = {3, 1, 2, 4};
  const std::vector<DistributeRule> rules = {
      {"r9/*", {{"r9", 100}}},
      {"r1/z1/*", {{"r1/z1/*", 80}, {"r1/*", 20}}},
  };
  // Client r1/z1: rule 2. "r1/z1/*" claims z1 (3 of 3) -> ceil(3 x 80 / 3)
  // = 80; "r1/*" claims z2 and z3 (1 + 2) -> ceil(20/3) = 7 and
  // ceil(40/3) = 14; r2 unclaimed -> 0.
  auto w = DistributeWeights({"r1", "z1", ""}, rules, localities, endpoints);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(*w, (std::vector<uint64_t>{80, 7, 14, 0}));
  // No rule for the client: not applied.
  EXPECT_FALSE(DistributeWeights({"r5", "z", ""}, rules, localities, endpoints).has_value());
}

// PlaceEndpoints puts the pieces together as lbkit_locality uses them.
TEST(PlaceEndpoints, ProximityLevelsCompacted) {
  // Client r1/z1: same zone 0, same region 2, elsewhere 3 -> levels 0, 1, 2.
  PlacementRules rules;
  rules.client = LocalityName{"r1", "z1", ""};
  const std::vector<LocalityName> endpoints = {
      {"r1", "z1", ""}, {"r1", "z2", ""}, {"r2", "z1", ""}, {"r1", "z1", ""}};
  const auto none = [](size_t) { return std::optional<std::string>(); };
  const auto placed = PlaceEndpoints(rules, endpoints, none, [](size_t, size_t) {
    return std::optional<std::string>();
  });
  ASSERT_EQ(placed.size(), 4u);
  EXPECT_EQ(placed[0].priority, 0u);
  EXPECT_EQ(placed[1].priority, 1u);
  EXPECT_EQ(placed[2].priority, 2u);
  EXPECT_EQ(placed[3].priority, 0u);
  for (const Placement& p : placed) {
    EXPECT_EQ(p.weight, 0u);
    EXPECT_FALSE(p.excluded);
  }
}

TEST(PlaceEndpoints, FailoverPriorityAloneUsesTheLabelsOnly) {
  // failoverPriority [network]: the client is on n1. Proximity does not
  // apply without failover (Istio): a far endpoint on n1 is level 0.
  PlacementRules rules;
  rules.client = LocalityName{"r1", "z1", ""};
  rules.num_priority_keys = 1;
  const std::vector<LocalityName> endpoints = {{"r2", "z9", ""}, {"r1", "z1", ""}};
  const std::vector<std::string> network = {"n1", "n2"};
  const auto placed = PlaceEndpoints(
      rules, endpoints, [](size_t) { return std::optional<std::string>("n1"); },
      [&](size_t e, size_t) { return std::optional<std::string>(network[e]); });
  EXPECT_EQ(placed[0].priority, 0u);
  EXPECT_EQ(placed[0].label_priority, 0u);
  EXPECT_EQ(placed[1].priority, 1u);
  EXPECT_EQ(placed[1].label_priority, 1u);
}

TEST(PlaceEndpoints, DistributeWeighsLocalitiesAndSetsNoLevels) {
  // The Distribute example above: r2 gets no traffic, everything is level 0.
  PlacementRules rules;
  rules.client = LocalityName{"r1", "z1", ""};
  rules.distribute = {{"r1/z1/*", {{"r1/z1/*", 80}, {"r1/*", 20}}}};
  const std::vector<LocalityName> endpoints = {
      {"r1", "z1", ""}, {"r1", "z2", ""}, {"r2", "z1", ""}};
  const auto placed = PlaceEndpoints(
      rules, endpoints, [](size_t) { return std::optional<std::string>(); },
      [](size_t, size_t) { return std::optional<std::string>(); });
  EXPECT_EQ(placed[0].weight, 80u);
  EXPECT_EQ(placed[1].weight, 20u);
  EXPECT_TRUE(placed[2].excluded);
  for (const Placement& p : placed) EXPECT_EQ(p.priority, 0u);
}

}  // namespace
}  // namespace lbkit::algorithms
