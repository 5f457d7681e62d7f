// lbkit_circuit_breaker against a fake helper: the limits hold exactly,
// overflow fails the pick at once (a drop: no queueing, no retry) with
// RESOURCE_EXHAUSTED, and places come back when calls end or never start.

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/types/variant.h"
#include "gtest/gtest.h"
#include "lbkit/stats.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using grpc_core::LoadBalancingPolicy;
using testing::MakeAddresses;
using testing::ParseConfig;
using testing::PolicyHarness;

using PickResult = LoadBalancingPolicy::PickResult;

const std::vector<std::string> kAddresses = {"127.0.0.1:6001", "127.0.0.1:6002"};

void Start(PolicyHarness& h, const std::string& config) {
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), config).ok());
  for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
  ASSERT_EQ(h.record().state, GRPC_CHANNEL_READY);
}

// Picks and keeps the call "in flight" (its tracker alive) in `held`.
std::string Hold(PolicyHarness& h, std::vector<PickResult>* held, absl::Status* dropped = nullptr) {
  held->emplace_back(PickResult::Fail(absl::OkStatus()));
  const std::string address = h.Pick(&held->back());
  if (auto* drop = absl::get_if<PickResult::Drop>(&held->back().result)) {
    if (dropped != nullptr) *dropped = drop->status;
  }
  return address;
}

TEST(CircuitBreakerConfig, ErrorsNameTheField) {
  auto config = ParseConfig("lbkit_circuit_breaker",
                            R"({"maxConcurrentRequests": 0, "childPolicy": [{"x": {}}]})");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "errors validating lbkit_circuit_breaker LB policy config: [field:childPolicy "
            "error:No known policies in list: x; field:maxConcurrentRequests error:must be at "
            "least 1]");
  EXPECT_TRUE(ParseConfig("lbkit_circuit_breaker", "{}").ok());
}

TEST(CircuitBreakerPolicy, MaxConcurrentRequestsHoldsExactly) {
  PolicyHarness h("lbkit_circuit_breaker");
  Start(h, R"({"maxConcurrentRequests": 3})");
  std::vector<PickResult> held;
  for (int i = 0; i < 3; ++i) EXPECT_NE(Hold(h, &held), "");
  absl::Status dropped;
  EXPECT_EQ(Hold(h, &held, &dropped), "");
  EXPECT_EQ(dropped.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(dropped.message(),
            "lbkit_circuit_breaker: 3 calls in flight on the channel, the maxConcurrentRequests "
            "limit");
  // One call ends: one place.
  held.erase(held.begin());
  EXPECT_NE(Hold(h, &held), "");
  EXPECT_EQ(Hold(h, &held), "");
  // Every call gone (started or not): all places back.
  held.clear();
  for (int i = 0; i < 3; ++i) EXPECT_NE(Hold(h, &held), "");
  // The drops are counted for the stats.
  EXPECT_TRUE(absl::StrContains(DumpState(), "\"policy\":\"lbkit_circuit_breaker\""));
  EXPECT_TRUE(absl::StrContains(DumpState(), "\"drops\":2"));
}

TEST(CircuitBreakerPolicy, MaxRequestsPerEndpoint) {
  PolicyHarness h("lbkit_circuit_breaker");
  Start(h, R"({"maxRequestsPerEndpoint": 1})");
  std::vector<PickResult> held;
  const std::string first = Hold(h, &held);
  const std::string second = Hold(h, &held);
  EXPECT_NE(first, second);  // round robin over the two
  absl::Status dropped;
  EXPECT_EQ(Hold(h, &held, &dropped), "");  // back to the first: full
  EXPECT_EQ(dropped.message(),
            "lbkit_circuit_breaker: 1 calls in flight on the endpoint, the "
            "maxRequestsPerEndpoint limit");
  held.clear();
  EXPECT_NE(Hold(h, &held), "");
}

// A pick the breaker drops after its child made it never starts; under an
// outlier detector that must not look like a failure of the endpoint.
TEST(CircuitBreakerPolicy, DropsAreNoFailuresToAnOutlierDetectorBelow) {
  PolicyHarness h("lbkit_circuit_breaker");
  Start(h, R"({"maxRequestsPerEndpoint": 1, "childPolicy": [{"lbkit_outlier_ejection": {
                 "consecutive5xxErrors": 1, "maxEjectionPercent": 100}}]})");
  std::vector<PickResult> held;
  Hold(h, &held);
  Hold(h, &held);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Hold(h, &held), "");  // dropped
  held.clear();
  std::set<std::string> picked;
  for (int i = 0; i < 4; ++i) {
    std::vector<PickResult> one;
    picked.insert(Hold(h, &one));
  }
  EXPECT_EQ(picked, (std::set<std::string>{kAddresses[0], kAddresses[1]}));
}

}  // namespace
}  // namespace lbkit
