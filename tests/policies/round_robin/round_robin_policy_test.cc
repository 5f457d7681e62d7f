// lbkit_round_robin against a fake helper: the test drives each subchannel's
// connectivity and checks the states, pickers and subchannel reuse the policy
// produces.

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/variant.h"
#include "gtest/gtest.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using grpc_core::LoadBalancingPolicy;
using testing::MakeAddresses;
using testing::ParseConfig;
using testing::PolicyHarness;

constexpr char kPolicy[] = "lbkit_round_robin";
constexpr char kA[] = "127.0.0.1:1001";
constexpr char kB[] = "127.0.0.1:1002";
constexpr char kC[] = "127.0.0.1:1003";
constexpr char kD[] = "127.0.0.1:1004";

TEST(RoundRobinConfig, AcceptsEmptyObjectAndIgnoresUnknownFields) {
  EXPECT_TRUE(ParseConfig(kPolicy, "{}").ok());
  EXPECT_TRUE(ParseConfig(kPolicy, R"({"someFutureField": 3})").ok());
}

// The healthCheck object every leaf policy takes.
TEST(RoundRobinConfig, HealthCheckErrorsNameTheField) {
  auto config = ParseConfig(kPolicy, R"({"healthCheck": {"mode": "push", "interval": "0s",
                                           "unhealthyThreshold": 0}})");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "errors validating lbkit_round_robin LB policy config: ["
            "field:healthCheck.interval error:must be greater than 0; "
            "field:healthCheck.mode error:must be \"watch\" or \"poll\"; "
            "field:healthCheck.unhealthyThreshold error:must be at least 1]");
  for (const char* policy : {"lbkit_least_request", "lbkit_ring_hash", "lbkit_maglev"}) {
    auto other = ParseConfig(policy, R"({"healthCheck": {"timeout": "0s"}})");
    ASSERT_FALSE(other.ok()) << policy;
    EXPECT_TRUE(absl::StrContains(other.status().message(),
                                  "field:healthCheck.timeout error:must be greater than 0"))
        << other.status();
  }
  EXPECT_TRUE(ParseConfig(kPolicy, R"({"healthCheck": {"mode": "poll"}})").ok());
}

// gRPC's registry rejects a non-object policy config before the policy sees
// it, with its own message.
TEST(RoundRobinConfig, RejectsNonObject) {
  auto config = ParseConfig(kPolicy, "[]");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), "child entry should be of type object");
}

TEST(RoundRobinPolicy, StartsConnectingAndConnectsIdleEndpoints) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC})).ok());
  EXPECT_EQ(h.record().created.size(), 3u);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_CONNECTING);
  LoadBalancingPolicy::PickResult result;
  EXPECT_EQ(h.Pick(&result), "");
  EXPECT_TRUE(absl::holds_alternative<LoadBalancingPolicy::PickResult::Queue>(
      result.result));
  h.SetState(kA, GRPC_CHANNEL_IDLE);
  EXPECT_EQ(h.record().Latest(kA)->connection_requests(), 1);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_CONNECTING);
}

TEST(RoundRobinPolicy, RotatesEvenlyOverReadyEndpointsOnly) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  h.SetState(kC, GRPC_CHANNEL_CONNECTING);
  auto counts = h.PickMany(1000);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[kA], 500);
  EXPECT_EQ(counts[kB], 500);
  // Consecutive picks alternate: rotation, not random choice.
  std::string first = h.Pick();
  EXPECT_NE(h.Pick(), first);
}

TEST(RoundRobinPolicy, FailedEndpointIsSkippedAndTriggersReresolution) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC})).ok());
  for (const char* a : {kA, kB, kC}) h.SetState(a, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.PickMany(300)[kB], 100);
  h.SetState(kB, GRPC_CHANNEL_TRANSIENT_FAILURE,
             absl::UnavailableError("connection refused"));
  EXPECT_EQ(h.record().reresolution_requests, 1);
  auto counts = h.PickMany(300);
  EXPECT_EQ(counts.count(kB), 0u);
  EXPECT_EQ(counts[kA], 150);
  EXPECT_EQ(counts[kC], 150);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
}

TEST(RoundRobinPolicy, AllFailedReportsTransientFailureWithLastError) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB})).ok());
  h.SetState(kA, GRPC_CHANNEL_TRANSIENT_FAILURE,
             absl::UnavailableError("connection refused A"));
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_CONNECTING);
  h.SetState(kB, GRPC_CHANNEL_TRANSIENT_FAILURE,
             absl::UnavailableError("connection refused B"));
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  EXPECT_EQ(h.record().status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.record().status.message(),
            "lbkit_round_robin: connections to all 2 endpoints failing; last "
            "error: UNAVAILABLE: connection refused B");
  LoadBalancingPolicy::PickResult result;
  h.Pick(&result);
  auto* fail = absl::get_if<LoadBalancingPolicy::PickResult::Fail>(&result.result);
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->status.code(), absl::StatusCode::kUnavailable);
  // TRANSIENT_FAILURE is sticky: a reconnect attempt does not flip the
  // channel back to CONNECTING.
  h.SetState(kA, GRPC_CHANNEL_CONNECTING);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  h.SetState(kA, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.PickMany(10)[kA], 10);
}

TEST(RoundRobinPolicy, ReusesSubchannelsAcrossUpdates) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC})).ok());
  for (const char* a : {kA, kB, kC}) h.SetState(a, GRPC_CHANNEL_READY);
  // The same addresses again: nothing is rebuilt, state is kept.
  ASSERT_TRUE(h.Update(MakeAddresses({kC, kB, kA})).ok());
  EXPECT_EQ(h.record().created.size(), 3u);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.PickMany(300).size(), 3u);
  // Replace A with D: only D is new; A's watch is cancelled.
  ASSERT_TRUE(h.Update(MakeAddresses({kB, kC, kD})).ok());
  EXPECT_EQ(h.record().created.size(), 4u);
  EXPECT_EQ(h.record().CountCreated(kD), 1u);
  EXPECT_EQ(h.record().Latest(kA)->num_watchers(), 0u);
  auto counts = h.PickMany(300);
  EXPECT_EQ(counts.count(kA), 0u);
  EXPECT_EQ(counts[kB], 150);
  EXPECT_EQ(counts[kC], 150);
  h.SetState(kD, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.PickMany(300)[kD], 100);
}

TEST(RoundRobinPolicy, DuplicateAddressesCollapse) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kA})).ok());
  EXPECT_EQ(h.record().created.size(), 2u);
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  auto counts = h.PickMany(100);
  EXPECT_EQ(counts[kA], 50);
  EXPECT_EQ(counts[kB], 50);
}

// An update that replaces every endpoint keeps the old READY ones in use
// until a new one is READY, so RPCs do not queue during an address change.
TEST(RoundRobinPolicy, KeepsReplacedReadyEndpointsUntilNewOnesAreReady) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  ASSERT_TRUE(h.Update(MakeAddresses({kC, kD})).ok());
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  auto counts = h.PickMany(100);
  EXPECT_EQ(counts[kA], 50);
  EXPECT_EQ(counts[kB], 50);
  h.SetState(kC, GRPC_CHANNEL_READY);
  counts = h.PickMany(100);
  EXPECT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts[kC], 100);
  EXPECT_EQ(h.record().Latest(kA)->num_watchers(), 0u);
  EXPECT_EQ(h.record().Latest(kB)->num_watchers(), 0u);
}

// An address that comes back while its old endpoint is still retained gets
// that endpoint back (same subchannel, still READY), not a new one.
TEST(RoundRobinPolicy, RetainedEndpointListedAgainIsReused) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  ASSERT_TRUE(h.Update(MakeAddresses({kC, kD})).ok());  // A, B retained
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kC})).ok());  // A listed again
  EXPECT_EQ(h.record().created.size(), 4u);
  EXPECT_EQ(h.record().CountCreated(kA), 1u);
  EXPECT_EQ(h.record().Latest(kA)->num_watchers(), 1u);
  EXPECT_EQ(h.record().Latest(kB)->num_watchers(), 0u);  // released: A is READY
  auto counts = h.PickMany(10);
  EXPECT_EQ(counts[kA], 10);
}

TEST(RoundRobinPolicy, ReplacedEndpointsReleasedWhenAllNewOnesFail) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  ASSERT_TRUE(h.Update(MakeAddresses({kC})).ok());
  EXPECT_EQ(h.PickMany(5)[kA], 5);
  h.SetState(kC, GRPC_CHANNEL_TRANSIENT_FAILURE,
             absl::UnavailableError("refused"));
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  EXPECT_EQ(h.record().Latest(kA)->num_watchers(), 0u);
}

TEST(RoundRobinPolicy, EmptyAddressListFailsWithUnavailable) {
  PolicyHarness h(kPolicy);
  grpc_core::ServerAddressList none;
  absl::Status status = h.Update(none);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  LoadBalancingPolicy::PickResult result;
  h.Pick(&result);
  auto* fail = absl::get_if<LoadBalancingPolicy::PickResult::Fail>(&result.result);
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fail->status.message(),
            "lbkit_round_robin: the resolver returned an empty address list");
}

TEST(RoundRobinPolicy, ResolverErrorKeepsExistingEndpoints) {
  PolicyHarness h(kPolicy);
  absl::Status status = h.Update(absl::UnavailableError("DNS lookup failed"));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  EXPECT_EQ(h.record().status.message(), "DNS lookup failed");
  ASSERT_TRUE(h.Update(MakeAddresses({kA})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  EXPECT_FALSE(h.Update(absl::UnavailableError("DNS lookup failed")).ok());
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_READY);
  EXPECT_EQ(h.PickMany(3)[kA], 3);
}

TEST(RoundRobinPolicy, HealthCheckArgsReachSubchannelsAndRebuildWhenChanged) {
  PolicyHarness h(kPolicy);
  auto with_health = grpc_core::ChannelArgs().Set(
      "grpc.internal.health_check_service_name", "lbkit.examples.Greeter");
  ASSERT_TRUE(h.Update(MakeAddresses({kA}), "{}", with_health).ok());
  EXPECT_EQ(h.record()
                .Latest(kA)
                ->args()
                .GetString("grpc.internal.health_check_service_name"),
            "lbkit.examples.Greeter");
  // Same args: reused. Health checking switched off: rebuilt.
  ASSERT_TRUE(h.Update(MakeAddresses({kA}), "{}", with_health).ok());
  EXPECT_EQ(h.record().created.size(), 1u);
  ASSERT_TRUE(h.Update(MakeAddresses({kA})).ok());
  EXPECT_EQ(h.record().created.size(), 2u);
  EXPECT_FALSE(h.record()
                   .Latest(kA)
                   ->args()
                   .GetString("grpc.internal.health_check_service_name")
                   .has_value());
}

TEST(RoundRobinPolicy, ResetBackoffReachesEverySubchannel) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB})).ok());
  {
    grpc_core::ExecCtx exec_ctx;
    h.policy()->ResetBackoffLocked();
  }
  EXPECT_EQ(h.record().Latest(kA)->backoff_resets(), 1);
  EXPECT_EQ(h.record().Latest(kB)->backoff_resets(), 1);
}

// Many threads picking from one picker at once (gRPC 1.51's channel never
// does; a parent policy's own threads could): every pick succeeds and the
// totals stay even to within 1% (racing picks may take the same step of the
// rotation, algorithms/round_robin.h). A serial rotation is exact, which
// RoundRobinPolicy tests check. Runs under ThreadSanitizer.
TEST(RoundRobinPickerStress, ConcurrentPicksAreEvenAndRaceFree) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC, kD})).ok());
  for (const char* a : {kA, kB, kC, kD}) h.SetState(a, GRPC_CHANNEL_READY);
  constexpr int kThreads = 4;
  constexpr int kPicks = 20000;
  std::vector<std::map<std::string, int>> counts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { counts[t] = h.PickMany(kPicks); });
  }
  for (auto& th : threads) th.join();
  std::map<std::string, int> total;
  for (auto& c : counts) {
    for (auto& [address, n] : c) total[address] += n;
  }
  ASSERT_EQ(total.size(), 4u);
  int sum = 0;
  for (auto& [address, n] : total) {
    EXPECT_NEAR(n, kThreads * kPicks / 4, kThreads * kPicks / 100) << address;
    sum += n;
  }
  EXPECT_EQ(sum, kThreads * kPicks);
}

}  // namespace
}  // namespace lbkit
