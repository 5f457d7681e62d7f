// lbkit_weighted_subsets against a fake helper: subsets by label, exact
// weighted shares, endpoints in no subset, an empty subset redistributed or
// failed, config errors by field.

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/variant.h"
#include "common/server_address_attributes.h"
#include "gtest/gtest.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using grpc_core::LoadBalancingPolicy;
using testing::MakeAddress;
using testing::ParseConfig;
using testing::PolicyHarness;

grpc_core::ServerAddressList Versions(const std::vector<std::pair<std::string, std::string>>& eps) {
  grpc_core::ServerAddressList out;
  for (const auto& [address, version] : eps) {
    internal::EndpointAttributes attrs;
    if (!version.empty()) attrs.labels["version"] = version;
    out.push_back(internal::WithEndpointAttributes(MakeAddress(address), attrs));
  }
  return out;
}

const std::vector<std::pair<std::string, std::string>> kFleet = {
    {"127.0.0.1:7001", "v1"}, {"127.0.0.1:7002", "v1"}, {"127.0.0.1:7003", "v1"},
    {"127.0.0.1:7011", "v2"}, {"127.0.0.1:7021", ""}};

constexpr char kCanary[] = R"({"subsets": [
    {"name": "stable", "labels": {"version": "v1"}, "weight": 90},
    {"name": "canary", "labels": {"version": "v2"}, "weight": 10}]})";

std::map<std::string, int> BySubset(PolicyHarness& h, int n) {
  std::map<std::string, int> out;
  for (const auto& [address, count] : h.PickMany(n)) {
    out[address == "127.0.0.1:7011" ? "canary" : address.empty() ? "failed" : "stable"] += count;
  }
  return out;
}

TEST(WeightedSubsetsConfig, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"subsets": []})", "[field:subsets error:must list at least one subset]"},
      {R"({"subsets": [{"name": "a", "weight": 0}, {"name": "a", "weight": 0}]})",
       "[field:subsets error:weights must not all be 0; field:subsets[1].name error:\"a\" names "
       "two subsets]"},
      {R"({"subsets": [{"name": "", "weight": 1, "childPolicy": [{"nope": {}}]}],
           "onEmptySubset": "panic"})",
       "[field:onEmptySubset error:must be \"redistribute\" or \"fail\"; "
       "field:subsets[0].childPolicy error:No known policies in list: nope; "
       "field:subsets[0].name error:must not be empty]"},
      {R"({"subsets": [{"name": "a"}]})", "[field:subsets[0].weight error:field not present]"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig("lbkit_weighted_subsets", c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(std::string(config.status().message()),
              std::string("errors validating lbkit_weighted_subsets LB policy config: ") +
                  c.message)
        << c.json;
  }
}

TEST(WeightedSubsetsPolicy, SplitsExactlyByWeightAndIgnoresUnmatchedEndpoints) {
  PolicyHarness h("lbkit_weighted_subsets");
  ASSERT_TRUE(h.Update(Versions(kFleet), kCanary).ok());
  // The unlabelled endpoint is in no subset: no connection to it.
  EXPECT_EQ(h.record().Latest("127.0.0.1:7021"), nullptr);
  for (const auto& [a, v] : kFleet) {
    if (!v.empty()) h.SetState(a, GRPC_CHANNEL_READY);
  }
  ASSERT_EQ(h.record().state, GRPC_CHANNEL_READY);
  // Smooth weighted round robin: exactly 90/10 in every 100 calls.
  EXPECT_EQ(BySubset(h, 1000), (std::map<std::string, int>{{"stable", 900}, {"canary", 100}}));
  // Within the stable subset its child (round robin) spreads evenly.
  auto counts = h.PickMany(1000);
  EXPECT_EQ(counts["127.0.0.1:7001"], 300);
  EXPECT_EQ(counts["127.0.0.1:7002"], 300);
  EXPECT_EQ(counts["127.0.0.1:7003"], 300);
}

TEST(WeightedSubsetsPolicy, AnEmptySubsetsShareIsRedistributedOrFailed) {
  {
    PolicyHarness h("lbkit_weighted_subsets");
    ASSERT_TRUE(h.Update(Versions(kFleet), kCanary).ok());
    for (const auto& [a, v] : kFleet) {
      if (!v.empty()) h.SetState(a, GRPC_CHANNEL_READY);
    }
    h.SetState("127.0.0.1:7011", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
    EXPECT_EQ(BySubset(h, 500), (std::map<std::string, int>{{"stable", 500}}));
  }
  {
    PolicyHarness h("lbkit_weighted_subsets");
    std::string config = kCanary;
    config.insert(1, R"("onEmptySubset": "fail", )");
    ASSERT_TRUE(h.Update(Versions(kFleet), config).ok());
    for (const auto& [a, v] : kFleet) {
      if (!v.empty()) h.SetState(a, GRPC_CHANNEL_READY);
    }
    h.SetState("127.0.0.1:7011", GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
    EXPECT_EQ(BySubset(h, 500), (std::map<std::string, int>{{"stable", 450}, {"failed", 50}}));
    LoadBalancingPolicy::PickResult r = LoadBalancingPolicy::PickResult::Fail(absl::OkStatus());
    std::string why;
    // A drop, not a failure: a failed pick would make wait_for_ready calls
    // wait for the empty subset until their deadline.
    for (int i = 0; i < 10 && why.empty(); ++i) {
      if (!h.Pick(&r).empty()) continue;
      auto* drop = absl::get_if<LoadBalancingPolicy::PickResult::Drop>(&r.result);
      ASSERT_NE(drop, nullptr) << "the empty subset's share must be dropped";
      why = std::string(drop->status.message());
    }
    EXPECT_EQ(why,
              "lbkit_weighted_subsets: subset \"canary\" has no READY endpoint (onEmptySubset: fail)");
  }
}

}  // namespace
}  // namespace lbkit
