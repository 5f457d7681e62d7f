// lbkit_locality against a fake helper: config errors by field, priority
// levels by proximity, spillover in Envoy's proportions, failover and
// return, distribute weights, failoverPriority labels, and child policies.
// Expected shares come from src/algorithms/locality.h's formulas worked by
// hand (tests/algorithms/locality_test.cc checks those against Envoy).

#include <cstdlib>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/server_address_attributes.h"
#include "gtest/gtest.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using testing::FakeMetadata;
using testing::MakeAddress;
using testing::ParseConfig;
using testing::PolicyHarness;

struct Spec {
  std::string address;
  std::string locality;  // region/zone/subzone
  std::map<std::string, std::string> labels = {};
};

grpc_core::ServerAddressList Endpoints(const std::vector<Spec>& specs) {
  grpc_core::ServerAddressList out;
  for (const Spec& s : specs) {
    internal::EndpointAttributes attrs;
    std::vector<std::string> parts = absl::StrSplit(s.locality, '/');
    attrs.locality.region = parts[0];
    if (parts.size() > 1) attrs.locality.zone = parts[1];
    if (parts.size() > 2) attrs.locality.sub_zone = parts[2];
    attrs.labels = s.labels;
    out.push_back(internal::WithEndpointAttributes(MakeAddress(s.address), attrs));
  }
  return out;
}

// Zone a (3), zone b (2), another region (2); the client is in r1/a.
const std::vector<Spec> kZones = {
    {"127.0.0.1:4001", "r1/a"}, {"127.0.0.1:4002", "r1/a"}, {"127.0.0.1:4003", "r1/a"},
    {"127.0.0.1:4011", "r1/b"}, {"127.0.0.1:4012", "r1/b"},
    {"127.0.0.1:4021", "r2/c"}, {"127.0.0.1:4022", "r2/c"},
};

std::string ZoneOf(const std::string& address) {
  for (const Spec& s : kZones) {
    if (s.address == address) return s.locality;
  }
  return "?";
}

std::map<std::string, double> ZoneShares(PolicyHarness& h, int picks) {
  std::map<std::string, double> shares;
  for (const auto& [address, count] : h.PickMany(picks)) {
    shares[ZoneOf(address)] += 100.0 * count / picks;
  }
  return shares;
}

void AllReady(PolicyHarness& h, const std::vector<Spec>& specs) {
  for (const Spec& s : specs) h.SetState(s.address, GRPC_CHANNEL_READY);
}

TEST(LocalityConfig, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"locality": "a/b/c/d"})",
       "[field:locality error:\"a/b/c/d\" is not region[/zone[/subZone]]]"},
      {R"({"locality": "r1", "distribute": [{"from": "r1/*", "to": {"r1/a/*": 70, "r1/b/*": 20}}]})",
       "[field:distribute[0].to error:weights must sum to 100, not 90]"},
      {R"({"distribute": [{"from": "r1//x", "to": {"r1/a": 100}}]})",
       "[field:distribute[0].from error:is not a locality pattern region[/zone[/subZone]] "
       "(\"*\" allowed)]"},
      {R"({"distribute": [{"from": "r1", "to": {"r1/a": 0, "r1/b": 100}}]})",
       "[field:distribute[0].to[\"r1/a\"] error:weight must be in [1, 100]]"},
      {R"({"distribute": [{"from": "r1", "to": {"r1": 100}}], "failover": [{"from": "r1", "to": "r2"}]})",
       "[field:distribute error:cannot be set together with failover (as in Istio)]"},
      {R"({"failover": [{"from": "r1", "to": "r1"}, {"from": "r1/a", "to": "r2"}]})",
       "[field:failover[0].to error:must differ from \"from\"; field:failover[1].from "
       "error:must be a region name (no \"/\" or \"*\")]"},
      {R"({"panicThreshold": 101, "overprovisioningFactor": 0})",
       "[field:overprovisioningFactor error:must be at least 1 (a percentage; Envoy's default "
       "is 140); field:panicThreshold error:must be a percentage in [0, 100]]"},
      {R"({"childPolicy": [{"no_such_policy": {}}]})",
       "[field:childPolicy error:No known policies in list: no_such_policy]"},
      {R"({"childPolicy": [{"lbkit_least_request": {"choiceCount": 1}}]})",
       "[field:childPolicy error:errors validating lbkit_least_request LB policy config: "
       "[field:choiceCount error:must be at least 2]]"},
      {R"({"failoverPriority": ["=v1"]})",
       "[field:failoverPriority[0] error:must be a label key, or key=value]"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig("lbkit_locality", c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(config.status().message()),
              std::string("errors validating lbkit_locality LB policy config: ") + c.message)
        << c.json;
  }
  EXPECT_TRUE(ParseConfig("lbkit_locality", "{}").ok());
}

TEST(LocalityPolicy, StaysInTheClientsZoneAndSpillsInEnvoysProportion) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a"})").ok());
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_CONNECTING);
  AllReady(h, kZones);
  ASSERT_EQ(h.record().state, GRPC_CHANNEL_READY);

  // All healthy: 100% in zone a, spread over its three endpoints.
  auto shares = ZoneShares(h, 3000);
  EXPECT_EQ(shares["r1/a"], 100.0);
  EXPECT_EQ(h.PickMany(3000).size(), 3u);

  // One of three down: health min(100, 140 x 2/3) = 93 -> 7% to zone b.
  h.SetState("127.0.0.1:4001", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  shares = ZoneShares(h, 20000);
  EXPECT_NEAR(shares["r1/b"], 7.0, 1.0);
  EXPECT_NEAR(shares["r1/a"], 93.0, 1.0);
  EXPECT_EQ(shares.count("r2/c"), 0u);

  // All of zone a down: zone b (same region) takes everything.
  h.SetState("127.0.0.1:4002", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  h.SetState("127.0.0.1:4003", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  shares = ZoneShares(h, 2000);
  EXPECT_EQ(shares["r1/b"], 100.0);

  // And zone b too: the other region.
  h.SetState("127.0.0.1:4011", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  h.SetState("127.0.0.1:4012", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  shares = ZoneShares(h, 2000);
  EXPECT_EQ(shares["r2/c"], 100.0);

  // Zone a back: traffic returns.
  for (const char* a : {"127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"}) {
    h.SetState(a, GRPC_CHANNEL_READY);
  }
  shares = ZoneShares(h, 2000);
  EXPECT_EQ(shares["r1/a"], 100.0);
}

TEST(LocalityPolicy, WithoutAClientLocalityAllEndpointsAreOneLevel) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), "{}").ok());
  AllReady(h, kZones);
  const auto counts = h.PickMany(7000);
  EXPECT_EQ(counts.size(), kZones.size());
  for (const auto& [address, count] : counts) EXPECT_NEAR(count, 1000, 150) << address;
}

TEST(LocalityPolicy, FailoverRuleChoosesTheNextRegion) {
  const std::vector<Spec> specs = {{"127.0.0.1:4101", "r1/a"},
                                   {"127.0.0.1:4102", "r2/a"},
                                   {"127.0.0.1:4103", "r3/a"}};
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(specs),
                       R"({"locality": "r1/a", "failover": [{"from": "r1", "to": "r3"}]})")
                  .ok());
  AllReady(h, specs);
  h.SetState("127.0.0.1:4101", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  EXPECT_EQ(h.PickMany(500), (std::map<std::string, int>{{"127.0.0.1:4103", 500}}));
  h.SetState("127.0.0.1:4103", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  EXPECT_EQ(h.PickMany(500), (std::map<std::string, int>{{"127.0.0.1:4102", 500}}));
}

TEST(LocalityPolicy, DistributeSplitsByWeight) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a", "distribute": [
      {"from": "r1/a/*", "to": {"r1/a/*": 80, "r1/b/*": 20}}]})")
                  .ok());
  // No rule sends traffic to r2: its endpoints get no subchannel at all.
  EXPECT_EQ(h.record().Latest("127.0.0.1:4021"), nullptr);
  AllReady(h, std::vector<Spec>(kZones.begin(), kZones.begin() + 5));
  auto shares = ZoneShares(h, 20000);
  EXPECT_NEAR(shares["r1/a"], 80.0, 1.5);
  EXPECT_NEAR(shares["r1/b"], 20.0, 1.5);
  // One of zone b's two down: its weight x min(1, 1.4 x 1/2) = 20 x 0.7 =
  // 14 against 80 -> 14.9%.
  h.SetState("127.0.0.1:4011", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  shares = ZoneShares(h, 20000);
  EXPECT_NEAR(shares["r1/b"], 100.0 * 14 / 94, 1.5);
}

// Istio applies distribute rules and nothing else: a client that no rule's
// `from` covers gets no locality preference, not same-zone-first.
TEST(LocalityPolicy, AClientNoDistributeRuleCoversBalancesOverEveryLocality) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/b", "distribute": [
      {"from": "r1/a/*", "to": {"r1/a/*": 80, "r1/b/*": 20}}]})")
                  .ok());
  AllReady(h, kZones);
  auto shares = ZoneShares(h, 14000);
  EXPECT_NEAR(shares["r1/a"], 100.0 * 3 / 7, 1.5);
  EXPECT_NEAR(shares["r1/b"], 100.0 * 2 / 7, 1.5);
  EXPECT_NEAR(shares["r2/c"], 100.0 * 2 / 7, 1.5);
}

TEST(LocalityPolicy, FailoverPriorityOrdersByLeadingLabels) {
  const std::vector<Spec> specs = {
      {"127.0.0.1:4201", "r1/a", {{"version", "v1"}}},
      {"127.0.0.1:4202", "r1/b", {{"version", "v2"}}},
      {"127.0.0.1:4203", "r2/a", {{"version", "v1"}}},
  };
  PolicyHarness h("lbkit_locality");
  // Same version first (whatever the region), then same region.
  ASSERT_TRUE(h.Update(Endpoints(specs), R"({"locality": "r1/a",
      "failoverPriority": ["version=v1", "topology.kubernetes.io/region"]})")
                  .ok());
  AllReady(h, specs);
  // Priorities: 4201 matches both (0), 4203 version only (1 x 5 + 3),
  // 4202 neither (2 x 5 + 1). Local first:
  EXPECT_EQ(h.PickMany(200), (std::map<std::string, int>{{"127.0.0.1:4201", 200}}));
  h.SetState("127.0.0.1:4201", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  EXPECT_EQ(h.PickMany(200), (std::map<std::string, int>{{"127.0.0.1:4203", 200}}));
  h.SetState("127.0.0.1:4203", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  EXPECT_EQ(h.PickMany(200), (std::map<std::string, int>{{"127.0.0.1:4202", 200}}));
}

// Istio's own cases for failoverPriority, replayed: TestApplyLocalitySetting,
// subtests "FailoverPriority" and "FailoverPriority with Failover", in
// istio/istio pilot/pkg/networking/core/loadbalancer/loadbalancer_test.go
// (commit 0241c74b114a7eed933383ceef03e58ff9abab5d). The client is in
// region1/zone1/subzone1; endpoints A-F and their labels are the test's
// buildWrappedLocalityLbEndpoints(). Istio asserts each endpoint group's
// priority; here each level is checked by where the picks go: all READY,
// level 0 takes every pick, spread over all its members; failing them
// moves the traffic to exactly level 1, and so on.
struct IstioPriorityCase {
  const char* name;
  const char* config;  // lbkit_locality config (Istio's failoverPriority, proxy labels)
  std::vector<Spec> endpoints;
  std::vector<std::set<std::string>> levels;  // addresses per priority, in order
};

void PrintTo(const IstioPriorityCase& c, std::ostream* os) { *os << c.name; }

const std::vector<Spec> kIstioEndpoints = {
    {"1.1.1.1:80", "region1/zone1/subzone1",
     {{"topology.istio.io/network", "n1"}, {"topology.istio.io/cluster", "c1"}}},
    {"2.2.2.2:80", "region1/zone1/subzone1",
     {{"key", "value"}, {"topology.istio.io/network", "n2"}, {"topology.istio.io/cluster", "c2"}}},
    {"3.3.3.3:80", "region2/zone2/subzone2",
     {{"key", "value"}, {"topology.istio.io/network", "n1"}, {"topology.istio.io/cluster", "c3"}}},
    {"4.4.4.4:80", "region2/zone2/subzone2",
     {{"key", "value"}, {"topology.istio.io/network", "n2"}, {"topology.istio.io/cluster", "c4"}}},
    {"1.2.3.4:80", "region3/zone3/subzone3",
     {{"key", "value"}, {"topology.istio.io/network", "n1"}, {"topology.istio.io/cluster", "c1"}}},
    {"2.3.4.5:80", "region3/zone3/subzone3",
     {{"key", "value"}, {"topology.istio.io/network", "n2"}, {"topology.istio.io/cluster", "c2"}}},
};

// buildWrappedLocalityLbEndpointsForFailoverPriorityWithFailover().
const std::vector<Spec> kIstioFailoverEndpoints = {
    {"1.1.1.1:80", "region1/zone1/subzone1",
     {{"topology.istio.io/network", "n1"}, {"topology.istio.io/cluster", "c1"}}},
    {"2.2.2.2:80", "region1/zone2/subzone2",
     {{"key", "value"}, {"topology.istio.io/network", "n2"}, {"topology.istio.io/cluster", "c2"}}},
    {"3.3.3.3:80", "region2/zone2/subzone2",
     {{"key", "value"}, {"topology.istio.io/network", "n1"}, {"topology.istio.io/cluster", "c3"}}},
    {"4.4.4.4:80", "region3/zone3/subzone3",
     {{"key", "value"}, {"topology.istio.io/network", "n2"}, {"topology.istio.io/cluster", "c4"}}},
    {"5.5.5.5:80", "region2/zone2/subzone2",
     {{"topology.istio.io/network", "n2"}, {"topology.istio.io/cluster", "c2"}}},
    {"6.6.6.6:80", "region3/zone3/subzone3",
     {{"key", "value"}, {"topology.istio.io/network", "n1"}, {"topology.istio.io/cluster", "c6"}}},
};

const std::set<std::string> kAllSix = {"1.1.1.1:80", "2.2.2.2:80", "3.3.3.3:80",
                                       "4.4.4.4:80", "1.2.3.4:80", "2.3.4.5:80"};

class IstioFailoverPriority : public ::testing::TestWithParam<IstioPriorityCase> {};

TEST_P(IstioFailoverPriority, LevelsAsIstioAssignsThem) {
  const IstioPriorityCase& c = GetParam();
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(c.endpoints), c.config).ok());
  AllReady(h, c.endpoints);
  for (size_t level = 0; level < c.levels.size(); ++level) {
    const std::map<std::string, int> picks = h.PickMany(600);
    std::set<std::string> seen;
    for (const auto& [address, n] : picks) seen.insert(address);
    EXPECT_EQ(seen, c.levels[level]) << "level " << level;
    for (const std::string& address : c.levels[level]) {
      h.SetState(address, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    IstioLoadbalancerTest, IstioFailoverPriority,
    ::testing::Values(
        IstioPriorityCase{"MatchNoneLabel",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["topology.istio.io/network", "topology.istio.io/cluster"],
          "clientLabels": {"topology.istio.io/network": "test", "topology.istio.io/cluster": "test"}})",
                          kIstioEndpoints, {kAllSix}},
        IstioPriorityCase{"MatchNetworkLabel",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["topology.istio.io/network", "topology.istio.io/cluster"],
          "clientLabels": {"topology.istio.io/network": "n1", "topology.istio.io/cluster": "test"}})",
                          kIstioEndpoints,
                          {{"1.1.1.1:80", "3.3.3.3:80", "1.2.3.4:80"},
                           {"2.2.2.2:80", "4.4.4.4:80", "2.3.4.5:80"}}},
        IstioPriorityCase{"NotMatchTheFirstNLabel",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["topology.istio.io/network", "topology.istio.io/cluster"],
          "clientLabels": {"topology.istio.io/network": "test", "topology.istio.io/cluster": "c1"}})",
                          kIstioEndpoints, {kAllSix}},
        IstioPriorityCase{"MatchAllLabels",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["key", "topology.istio.io/network", "topology.istio.io/cluster"],
          "clientLabels": {"key": "value", "topology.istio.io/network": "n2",
                           "topology.istio.io/cluster": "c2"}})",
                          kIstioEndpoints,
                          {{"2.2.2.2:80", "2.3.4.5:80"},
                           {"4.4.4.4:80"},
                           {"3.3.3.3:80", "1.2.3.4:80"},
                           {"1.1.1.1:80"}}},
        IstioPriorityCase{"PriorityAssignmentAsPerTheOverriddenValue",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["topology.istio.io/network=n1"],
          "clientLabels": {"topology.istio.io/network": "n2", "topology.istio.io/cluster": "test"}})",
                          kIstioEndpoints,
                          {{"1.1.1.1:80", "3.3.3.3:80", "1.2.3.4:80"},
                           {"2.2.2.2:80", "4.4.4.4:80", "2.3.4.5:80"}}},
        IstioPriorityCase{"NoEndpointsWithOverriddenValue",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["topology.istio.io/network=n3"],
          "clientLabels": {"topology.istio.io/network": "n1", "topology.istio.io/cluster": "test"}})",
                          kIstioEndpoints, {kAllSix}},
        // "FailoverPriority with Failover": label level x 5 + proximity.
        IstioPriorityCase{"WithFailoverMatchAllLabels",
                          R"({"locality": "region1/zone1/subzone1",
          "failoverPriority": ["topology.istio.io/network", "topology.istio.io/cluster"],
          "failover": [{"from": "region1", "to": "region2"}],
          "clientLabels": {"topology.istio.io/network": "n2", "topology.istio.io/cluster": "c2"}})",
                          kIstioFailoverEndpoints,
                          {{"2.2.2.2:80"},
                           {"5.5.5.5:80"},
                           {"4.4.4.4:80"},
                           {"1.1.1.1:80"},
                           {"3.3.3.3:80"},
                           {"6.6.6.6:80"}}}),
    [](const auto& info) { return std::string(info.param.name); });

// A wrapper between lbkit_locality and a child of gRPC's own (whose picker
// does not say how many endpoints it serves) passes "unknown" on, and the
// locality counts the child's READY subchannels: a wrapper that claimed 0
// made every locality look empty and every call queue.
TEST(LocalityPolicy, WrappersOverGrpcChildrenKeepTheirReadyCount) {
  for (const char* wrapper : {"lbkit_circuit_breaker", "lbkit_outlier_ejection"}) {
    PolicyHarness h("lbkit_locality");
    ASSERT_TRUE(h.Update(Endpoints(kZones), absl::StrCat(R"({"locality": "r1/a",
        "childPolicy": [{")", wrapper, R"(": {"childPolicy": [{"round_robin": {}}]}}]})"))
                    .ok());
    AllReady(h, kZones);
    ASSERT_EQ(h.record().state, GRPC_CHANNEL_READY) << wrapper;
    auto shares = ZoneShares(h, 3000);
    EXPECT_EQ(shares["r1/a"], 100.0) << wrapper;
    // Zone a down: its share moves on.
    for (const char* a : {"127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4003"}) {
      h.SetState(a, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
    }
    shares = ZoneShares(h, 3000);
    EXPECT_EQ(shares["r1/b"], 100.0) << wrapper;
  }
}

TEST(LocalityPolicy, PanicSpreadsOverTheReadyEndpointsOfEveryLevel) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a"})").ok());
  AllReady(h, kZones);
  // 1/3, 1/2, 0/2 healthy: NTA = 46 + 70 = 100: no panic; 46/54.
  for (const char* a : {"127.0.0.1:4001", "127.0.0.1:4002", "127.0.0.1:4011", "127.0.0.1:4021",
                        "127.0.0.1:4022"}) {
    h.SetState(a, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  }
  auto shares = ZoneShares(h, 20000);
  EXPECT_NEAR(shares["r1/a"], 46, 1.5);
  EXPECT_NEAR(shares["r1/b"], 54, 1.5);
  // Zone b's last one down: 1/3, 0/2, 0/2: NTA 46 < 100 and every level
  // under 50% healthy: total panic, levels by endpoint count (3/7 = 42,
  // 2/7 = 28, 2/7 = 28 +2) but only zone a has a READY endpoint: it takes
  // every call instead of failing 58% of them.
  h.SetState("127.0.0.1:4012", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  EXPECT_EQ(h.PickMany(500), (std::map<std::string, int>{{"127.0.0.1:4003", 500}}));
}

TEST(LocalityPolicy, EveryLocalityFailingFailsWithTheReason) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a"})").ok());
  for (const Spec& s : kZones) {
    h.SetState(s.address, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("refused"));
  }
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  EXPECT_TRUE(absl::StrContains(h.record().status.message(), "every locality is failing"))
      << h.record().status;
  EXPECT_TRUE(absl::StrContains(h.record().status.message(), "refused")) << h.record().status;
  EXPECT_FALSE(h.Update(grpc_core::ServerAddressList{}, R"({"locality": "r1/a"})").ok());
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
}

TEST(LocalityPolicy, ChildPolicyBalancesEachLocality) {
  // A hashing child: a key sticks to one endpoint of the local zone.
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a",
      "childPolicy": [{"lbkit_ring_hash": {"requestHashHeader": "x-user-id"}}]})")
                  .ok());
  AllReady(h, kZones);
  std::set<std::string> seen;
  for (int k = 0; k < 60; ++k) {
    FakeMetadata metadata(std::map<std::string, std::string>{{"x-user-id", absl::StrCat("u", k)}});
    const std::string first = h.Pick(nullptr, &metadata);
    EXPECT_EQ(ZoneOf(first), "r1/a");
    for (int again = 0; again < 3; ++again) EXPECT_EQ(h.Pick(nullptr, &metadata), first);
    seen.insert(first);
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST(LocalityPolicy, AnUpdateKeepsConnectionsAndMovesEndpointsBetweenLevels) {
  PolicyHarness h("lbkit_locality");
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a"})").ok());
  AllReady(h, kZones);
  const size_t created = h.record().created.size();
  // The same endpoints again: no new subchannel, still READY.
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/a"})").ok());
  EXPECT_EQ(h.record().created.size(), created);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  // The client moves to zone b: traffic follows, on the same connections.
  ASSERT_TRUE(h.Update(Endpoints(kZones), R"({"locality": "r1/b"})").ok());
  EXPECT_EQ(h.record().created.size(), created);
  EXPECT_EQ(ZoneShares(h, 1000)["r1/b"], 100.0);
}

TEST(LocalityPolicy, ClientLocalityFromTheEnvironment) {
  setenv("LBKIT_LOCALITY", "r1/b", 1);
  {
    PolicyHarness h("lbkit_locality");
    ASSERT_TRUE(h.Update(Endpoints(kZones), "{}").ok());
    AllReady(h, kZones);
    EXPECT_EQ(ZoneShares(h, 1000)["r1/b"], 100.0);
  }
  setenv("LBKIT_LOCALITY", "r1/b/c/d", 1);
  auto config = ParseConfig("lbkit_locality", "{}");
  unsetenv("LBKIT_LOCALITY");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(std::string(config.status().message()),
            "errors validating lbkit_locality LB policy config: [field:locality "
            "error:\"r1/b/c/d\" (from $LBKIT_LOCALITY) is not region[/zone[/subZone]]]");
}

TEST(LocalityPolicy, GrpcsOwnPoliciesWorkAsChildren) {
  // pick_first is no child for this: it connects to one endpoint, so the
  // others never count as healthy (README).
  for (const char* child : {"round_robin"}) {
    PolicyHarness h("lbkit_locality");
    ASSERT_TRUE(h.Update(Endpoints(kZones), absl::StrCat(R"({"locality": "r1/a", "childPolicy": [{")",
                                                         child, R"(": {}}]})"))
                    .ok());
    AllReady(h, kZones);
    ASSERT_EQ(h.record().state, GRPC_CHANNEL_READY) << child;
    EXPECT_EQ(ZoneShares(h, 600)["r1/a"], 100.0) << child;
    h.SetState("127.0.0.1:4001", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("x"));
    h.SetState("127.0.0.1:4002", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("x"));
    h.SetState("127.0.0.1:4003", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("x"));
    EXPECT_EQ(ZoneShares(h, 600)["r1/b"], 100.0) << child;
  }
}

}  // namespace
}  // namespace lbkit
