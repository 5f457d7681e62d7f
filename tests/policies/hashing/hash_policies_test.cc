// lbkit_ring_hash and lbkit_maglev against a fake helper: config errors,
// key affinity, walking past endpoints that are not READY, and keys coming
// back when their endpoint does.

#include <algorithm>
#include <cmath>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/fake_helper.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit {
namespace {

using testing::FakeMetadata;
using testing::MakeAddresses;
using testing::ParseConfig;
using testing::PolicyHarness;

const std::vector<std::string> kAddresses = {"127.0.0.1:3001", "127.0.0.1:3002",
                                             "127.0.0.1:3003", "127.0.0.1:3004",
                                             "127.0.0.1:3005"};

struct Policy {
  const char* label;
  const char* name;
  const char* config;
};
// Names the parameter in test listings (ctest shows it).
void PrintTo(const Policy& policy, std::ostream* os) { *os << policy.label; }

const Policy kPolicies[] = {
    {"ring_hash", "lbkit_ring_hash", R"({"requestHashHeader": "X-User-Id"})"},
    {"ring_hash_fixed", "lbkit_ring_hash",
     R"({"requestHashHeader": "x-user-id", "fixedEntriesPerWeight": 100})"},
    {"maglev", "lbkit_maglev", R"({"requestHashHeader": "x-user-id", "tableSize": 251})"},
};

std::string PickFor(PolicyHarness& h, const std::string& key) {
  FakeMetadata metadata({{"x-user-id", key}});
  return h.Pick(nullptr, &metadata);
}

TEST(HashPolicyConfig, ErrorsNameTheField) {
  struct Case {
    const char* policy;
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"lbkit_ring_hash", R"({"minRingSize": 0, "maxRingSize": 9000000})",
       "errors validating lbkit_ring_hash LB policy config: [field:maxRingSize "
       "error:must be in [1, 8388608]; field:minRingSize error:must be in [1, 8388608]]"},
      {"lbkit_ring_hash", R"({"minRingSize": 5000, "maxRingSize": 4096})",
       "errors validating lbkit_ring_hash LB policy config: [field:minRingSize "
       "error:must not exceed maxRingSize]"},
      {"lbkit_ring_hash", R"({"requestHashHeader": "x-token-bin"})",
       "errors validating lbkit_ring_hash LB policy config: "
       "[field:requestHashHeader error:must not be a binary (-bin) header]"},
      {"lbkit_ring_hash", R"({"requestHashHeader": ":path"})",
       "errors validating lbkit_ring_hash LB policy config: "
       "[field:requestHashHeader error:must not be a pseudo-header]"},
      {"lbkit_maglev", R"({"tableSize": 65536})",
       "errors validating lbkit_maglev LB policy config: [field:tableSize "
       "error:must be a prime number (e.g. 65537, 131071, 5000011)]"},
      {"lbkit_ring_hash", R"({"hashBalanceFactor": 99})",
       "errors validating lbkit_ring_hash LB policy config: [field:hashBalanceFactor "
       "error:must be at least 100 (a percentage of the mean load), or 0 for off]"},
      {"lbkit_ring_hash", R"({"fixedEntriesPerWeight": 70000})",
       "errors validating lbkit_ring_hash LB policy config: [field:fixedEntriesPerWeight "
       "error:must be at most 65536 (0 = size the ring as Envoy does)]"},
      {"lbkit_maglev", R"({"hashBalanceFactor": -1})",
       "errors validating lbkit_maglev LB policy config: [field:hashBalanceFactor "
       "error:failed to parse non-negative number]"},
      {"lbkit_maglev", R"({"tableSize": 5000012, "requestHashHeader": 3})",
       "errors validating lbkit_maglev LB policy config: [field:requestHashHeader "
       "error:is not a string; field:tableSize error:must be at most 5000011]"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig(c.policy, c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(config.status().message()), c.message);
  }
  EXPECT_TRUE(ParseConfig("lbkit_ring_hash", "{}").ok());
  EXPECT_TRUE(ParseConfig("lbkit_maglev", "{}").ok());
}

class HashPolicyTest : public ::testing::TestWithParam<Policy> {};

// Istio's consistentHash.useSourceIp: every call of this client, with or
// without headers, reaches one backend, and a new picker (endpoints
// updated) keeps it there.
TEST(HashPolicyUseSourceIp, EveryCallOfTheProcessSticksToOneEndpoint) {
  for (const char* name : {"lbkit_ring_hash", "lbkit_maglev"}) {
    SCOPED_TRACE(name);
    PolicyHarness h(name);
    ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), R"({"useSourceIp": true})").ok());
    for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
    std::set<std::string> reached;
    for (int i = 0; i < 100; ++i) {
      reached.insert(h.Pick());
      reached.insert(PickFor(h, "user-" + std::to_string(i)));
    }
    ASSERT_EQ(reached.size(), 1u);
    ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), R"({"useSourceIp": true})").ok());
    EXPECT_EQ(h.Pick(), *reached.begin());
  }
  auto both = ParseConfig("lbkit_ring_hash", R"({"useSourceIp": true, "requestHashHeader": "x"})");
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(std::string(both.status().message()),
            "errors validating lbkit_ring_hash LB policy config: [field:useSourceIp "
            "error:hashes the client, requestHashHeader the call: set one of them]");
}

TEST_P(HashPolicyTest, KeysStickAndSpread) {
  PolicyHarness h(GetParam().name);
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), GetParam().config).ok());
  for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
  std::map<std::string, std::string> owner;
  std::map<std::string, int> per;
  for (int k = 0; k < 200; ++k) {
    const std::string key = "user-" + std::to_string(k);
    owner[key] = PickFor(h, key);
    ++per[owner[key]];
    for (int again = 0; again < 3; ++again) ASSERT_EQ(PickFor(h, key), owner[key]);
  }
  EXPECT_EQ(per.size(), kAddresses.size());  // 200 keys reach all 5
  // A call without the header goes to a random READY endpoint.
  std::set<std::string> random;
  for (int i = 0; i < 200; ++i) random.insert(h.Pick());
  EXPECT_EQ(random.size(), kAddresses.size());
}

TEST_P(HashPolicyTest, OnlyTheFailedEndpointsKeysMoveAndTheyComeBack) {
  PolicyHarness h(GetParam().name);
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), GetParam().config).ok());
  for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
  std::map<std::string, std::string> before;
  for (int k = 0; k < 300; ++k) before["u" + std::to_string(k)] = PickFor(h, "u" + std::to_string(k));
  const std::string& victim = kAddresses[2];
  h.SetState(victim, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  int moved = 0;
  for (const auto& [key, was] : before) {
    const std::string now = PickFor(h, key);
    EXPECT_NE(now, victim);
    if (was == victim) {
      ++moved;
    } else {
      EXPECT_EQ(now, was) << key << " moved although its endpoint is up";
    }
  }
  EXPECT_GT(moved, 0);
  h.SetState(victim, GRPC_CHANNEL_READY);
  for (const auto& [key, was] : before) EXPECT_EQ(PickFor(h, key), was) << key;
}

// hashBalanceFactor 150 over 5 endpoints: one hot key's calls stay on its
// endpoint up to ceil(ceil((A + 1) x 1.5) / 5) in flight, then spill to the
// others; once they finish the key is back home.
TEST_P(HashPolicyTest, BoundedLoadSpillsAHotKeyAndBringsItBack) {
  PolicyHarness h(GetParam().name);
  std::string config = GetParam().config;
  config.insert(1, R"("hashBalanceFactor": 150, )");
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), config).ok());
  for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
  const std::string home = PickFor(h, "hot");
  std::vector<grpc_core::LoadBalancingPolicy::PickResult> in_flight;
  std::map<std::string, int> per;
  for (int i = 0; i < 50; ++i) {
    FakeMetadata metadata(std::map<std::string, std::string>{{"x-user-id", "hot"}});
    in_flight.emplace_back(grpc_core::LoadBalancingPolicy::PickResult::Fail(absl::OkStatus()));
    const std::string picked = h.Pick(&in_flight.back(), &metadata);
    // Before this call, i were in flight: the home endpoint may hold
    // ceil(ceil((i + 1) * 1.5) / 5) including this one.
    const int slots = std::max(1, static_cast<int>(std::ceil(std::ceil((i + 1) * 1.5) / 5.0)));
    ++per[picked];
    if (picked == home) {
      EXPECT_LE(per[home], slots) << "call " << i;
    } else {
      EXPECT_GE(per[home], slots) << "call " << i << " spilled before home was full";
    }
  }
  // 50 calls: home holds its bound of ceil(75 / 5) = 15, the rest spilled.
  EXPECT_EQ(per[home], 15);
  EXPECT_GE(per.size(), 3u);
  for (const auto& [address, count] : per) EXPECT_LE(count, 15) << address;
  in_flight.clear();  // the calls end
  for (int i = 0; i < 5; ++i) EXPECT_EQ(PickFor(h, "hot"), home);
}

// The channel can refuse a subchannel (it returns null while it shuts
// down); the endpoint then fails at once, inside the update. Before the
// fix, that failure published a picker mid-update that paired the old
// ring/table (indices for 5 endpoints) with the new endpoint list (2): an
// out-of-bounds read on the pick path. Now nothing is published until the
// update is done, and the one picker after it is consistent.
TEST_P(HashPolicyTest, ARefusedSubchannelInAnUpdatePublishesNoHalfBuiltPicker) {
  PolicyHarness h(GetParam().name);
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), GetParam().config).ok());
  for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
  h.record().refuse_subchannels.insert("127.0.0.1:3999");
  const int before = h.record().state_updates;
  ASSERT_TRUE(h.Update(MakeAddresses({kAddresses[0], "127.0.0.1:3999"}), GetParam().config).ok());
  EXPECT_EQ(h.record().state_updates - before, 1) << "a picker was published mid-update";
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  for (int k = 0; k < 200; ++k) EXPECT_EQ(PickFor(h, "u" + std::to_string(k)), kAddresses[0]);
}

INSTANTIATE_TEST_SUITE_P(Policies, HashPolicyTest, ::testing::ValuesIn(kPolicies),
                         [](const auto& info) { return std::string(info.param.label); });

}  // namespace
}  // namespace lbkit
