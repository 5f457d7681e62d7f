// lbkit_least_request against a fake helper: config validation, in-flight
// counting through the call tracker, and what survives picker rebuilds and
// resolver updates.

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "algorithms/random.h"
#include "gtest/gtest.h"
#include "lbkit/stats.h"
#include "tests/support/fake_helper.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/variant.h"

namespace lbkit {
namespace {

using grpc_core::LoadBalancingPolicy;
using testing::MakeAddresses;
using testing::ParseConfig;
using testing::PolicyHarness;

constexpr char kPolicy[] = "lbkit_least_request";
constexpr char kA[] = "127.0.0.1:2001";
constexpr char kB[] = "127.0.0.1:2002";
constexpr char kC[] = "127.0.0.1:2003";
constexpr char kD[] = "127.0.0.1:2004";

TEST(LeastRequestConfig, AcceptsDefaultsAndFullConfig) {
  EXPECT_TRUE(ParseConfig(kPolicy, "{}").ok());
  EXPECT_TRUE(ParseConfig(kPolicy, R"({"choiceCount": 3, "activeRequestBias": 0.5,
      "peakEwma": {"decay": "5s", "defaultRtt": "0.010s"}})")
                  .ok());
  EXPECT_TRUE(ParseConfig(kPolicy, R"({"choiceCount": 50})").ok());  // clamped
  EXPECT_TRUE(ParseConfig(kPolicy, R"({"peakEwma": {}})").ok());
  EXPECT_TRUE(ParseConfig(kPolicy, R"({"latencyEwma": {}})").ok());
  EXPECT_TRUE(
      ParseConfig(kPolicy, R"({"latencyEwma": {"decay": "2.5s", "defaultRtt": "0.005s"}})").ok());
}

TEST(LeastRequestConfig, ErrorsNameEveryBadField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"choiceCount": 1})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:choiceCount error:must be at least 2]"},
      {R"({"choiceCount": "two"})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:choiceCount error:failed to parse non-negative number]"},
      // Durations are protobuf JSON strings: "0.030s", not "30ms".
      {R"({"peakEwma": {"defaultRtt": "30ms"}})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:peakEwma.defaultRtt error:Not a duration (not a number of seconds)]"},
      {R"({"activeRequestBias": -1})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:activeRequestBias error:must be a finite number >= 0]"},
      {R"({"peakEwma": {"decay": "0s", "defaultRtt": "ten"}})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:peakEwma.decay error:must be greater than 0; "
       "field:peakEwma.defaultRtt error:Not a duration (no s suffix)]"},
      {R"({"peakEwma": {}, "latencyEwma": {}})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:latencyEwma error:peakEwma and latencyEwma are two estimators; set one of them]"},
      {R"({"latencyEwma": {"decay": "0s"}})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:latencyEwma.decay error:must be greater than 0]"},
      {R"({"choiceCount": 0, "peakEwma": 3})",
       "errors validating lbkit_least_request LB policy config: "
       "[field:choiceCount error:must be at least 2; "
       "field:peakEwma error:is not an object]"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig(kPolicy, c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(config.status().message()), c.message) << c.json;
  }
}

// The same connectivity rules as lbkit_round_robin (shared LeafPolicy).
TEST(LeastRequestPolicy, OnlyReadyEndpointsArePicked) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC})).ok());
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_CONNECTING);
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("down"));
  EXPECT_EQ(h.record().reresolution_requests, 0);  // first report: no
  auto counts = h.PickMany(100);
  EXPECT_EQ(counts[kA], 100);
  h.SetState(kA, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("gone"));
  h.SetState(kC, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("gone"));
  EXPECT_EQ(h.record().state, GRPC_CHANNEL_TRANSIENT_FAILURE);
  EXPECT_EQ(h.record().status.message(),
            "lbkit_least_request: connections to all 3 endpoints failing; last "
            "error: UNAVAILABLE: gone");
}

// Calls in flight are counted from the pick until the channel drops the
// call's tracker, and a loaded endpoint is avoided.
TEST(LeastRequestPolicy, InFlightCallsSteerPicksAway) {
  algorithms::SeedThreadRandom(7);
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  // Hold 5 calls: with two endpoints both are always candidates, so they
  // alternate as their counts leapfrog.
  std::vector<LoadBalancingPolicy::PickResult> held(5);
  std::map<std::string, int> counts;
  for (auto& r : held) ++counts[h.Pick(&r)];
  EXPECT_EQ(std::abs(counts[kA] - counts[kB]), 1);
  // The next picks go to the less loaded one until they are even.
  const std::string lighter = counts[kA] < counts[kB] ? kA : kB;
  EXPECT_EQ(h.Pick(), lighter);
  held.clear();  // Trackers destroyed: calls over, counts back to 0.
  auto spread = h.PickMany(1000);
  EXPECT_NEAR(spread[kA], 500, 60);
}

TEST(LeastRequestPolicy, InFlightCountsSurviveResolverUpdates) {
  algorithms::SeedThreadRandom(8);
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB})).ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  std::vector<LoadBalancingPolicy::PickResult> held(8);
  for (auto& r : held) h.Pick(&r);  // 4 on A, 4 on B
  // C and D join; A and B keep their endpoints, and so their counts.
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC, kD})).ok());
  EXPECT_EQ(h.record().created.size(), 4u);
  h.SetState(kC, GRPC_CHANNEL_READY);
  h.SetState(kD, GRPC_CHANNEL_READY);
  // Only a draw of {A, B} together (1 in 6) can pick a busy endpoint.
  auto counts = h.PickMany(6000);
  EXPECT_NEAR(counts[kC] + counts[kD], 5000, 250);
}

// Picks, starts and finishes one call that takes `latency(picked)` of the
// policy's (fake) clock; returns the endpoint picked.
std::string CompleteOneCall(PolicyHarness& h,
                            const std::function<std::chrono::milliseconds(const std::string&)>&
                                latency) {
  LoadBalancingPolicy::PickResult r;
  const std::string picked = h.Pick(&r);
  auto& complete = absl::get<LoadBalancingPolicy::PickResult::Complete>(r.result);
  complete.subchannel_call_tracker->Start();
  h.record().event_engine.Advance(latency(picked));
  complete.subchannel_call_tracker->Finish({absl::OkStatus(), nullptr, nullptr});
  return picked;
}

TEST(LeastRequestPolicy, PeakEwmaAvoidsTheSlowEndpoint) {
  algorithms::SeedThreadRandom(9);
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB}),
                       R"({"peakEwma": {"decay": "10s", "defaultRtt": "0.001s"}})")
                  .ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  // One call on A that takes 50 ms of the policy's (fake) clock: A's
  // estimate jumps to 50 ms at once. B's calls take 1 ms.
  for (int i = 0; i < 40; ++i) {
    const std::string picked = CompleteOneCall(
        h, [](const std::string& p) { return std::chrono::milliseconds(p == kA ? 50 : 1); });
    if (picked == kA) break;
  }
  // Now B (1 ms) wins every pick while idle.
  auto counts = h.PickMany(200);
  EXPECT_EQ(counts[kB], 200);
}

// latencyEwma: endpoint A answers in 3 ms, B in 1 ms (the fake clock). Once
// both have answered, B takes the calls while it has fewer than 8 more in
// flight than A, where plain least request would alternate.
TEST(LeastRequestPolicy, LatencyEwmaPrefersTheFastEndpointUnderLoad) {
  algorithms::SeedThreadRandom(11);
  PolicyHarness h(kPolicy);
  // A default no higher than either: each endpoint is tried until it answers.
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB}),
                       R"({"latencyEwma": {"decay": "1s", "defaultRtt": "0.001s"}})")
                  .ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  std::set<std::string> answered;
  for (int i = 0; i < 40 && answered.size() < 2; ++i) {
    answered.insert(CompleteOneCall(
        h, [](const std::string& p) { return std::chrono::milliseconds(p == kA ? 3 : 1); }));
  }
  ASSERT_EQ(answered.size(), 2u);
  // Hold 6 calls: every one goes to B (1 * sqrt(6 + 1) < 3 * sqrt(0 + 1)).
  std::vector<LoadBalancingPolicy::PickResult> held(6);
  for (auto& r : held) EXPECT_EQ(h.Pick(&r), kB);
  // The dump shows each endpoint's estimate.
  const std::string dump = lbkit::DumpState();
  EXPECT_NE(dump.find("\"latency_estimate_ms\":1.000"), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"latency_estimate_ms\":3.000"), std::string::npos) << dump;
}

// latencyEwma with its 30 ms default: A has answered in 1 ms; B joins. B
// is probed (one call while idle) instead of waiting for its 30 ms default
// to decay below A's 1 ms, and then competes by its own answers.
TEST(LeastRequestPolicy, LatencyEwmaProbesAnEndpointItHasNoSampleOf) {
  algorithms::SeedThreadRandom(13);
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA}), R"({"latencyEwma": {}})").ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  EXPECT_EQ(CompleteOneCall(h, [](const std::string&) { return std::chrono::milliseconds(1); }),
            kA);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB}), R"({"latencyEwma": {}})").ok());
  h.SetState(kB, GRPC_CHANNEL_READY);
  // The first pick probes B; while that call runs, B costs its default and A
  // takes the rest.
  LoadBalancingPolicy::PickResult probe;
  EXPECT_EQ(h.Pick(&probe), kB);
  auto counts = h.PickMany(20);
  EXPECT_EQ(counts[kA], 20);
  // B answers in 1 ms too: from then on the two share the calls.
  auto& complete = absl::get<LoadBalancingPolicy::PickResult::Complete>(probe.result);
  complete.subchannel_call_tracker->Start();
  h.record().event_engine.Advance(std::chrono::milliseconds(1));
  complete.subchannel_call_tracker->Finish({absl::OkStatus(), nullptr, nullptr});
  probe = LoadBalancingPolicy::PickResult();
  std::map<std::string, int> shared;
  for (int i = 0; i < 200; ++i) {
    ++shared[CompleteOneCall(h, [](const std::string&) { return std::chrono::milliseconds(1); })];
  }
  EXPECT_GT(shared[kB], 50);
  EXPECT_GT(shared[kA], 50);
}

// A call held while its endpoint leaves the policy: the endpoint's data
// (in-flight count and estimate) lives until that call ends, and is freed
// then. AddressSanitizer reports a use after free, LeakSanitizer a leak,
// if either goes wrong.
TEST(LeastRequestPolicy, ARemovedEndpointsDataLastsUntilItsLastCallEnds) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB}), R"({"latencyEwma": {}})").ok());
  h.SetState(kA, GRPC_CHANNEL_READY);
  h.SetState(kB, GRPC_CHANNEL_READY);
  LoadBalancingPolicy::PickResult held;
  const std::string picked = h.Pick(&held);
  ASSERT_TRUE(picked == kA || picked == kB);
  auto& complete = absl::get<LoadBalancingPolicy::PickResult::Complete>(held.result);
  complete.subchannel_call_tracker->Start();
  ASSERT_TRUE(h.Update(MakeAddresses({kC, kD}), R"({"latencyEwma": {}})").ok());
  h.SetState(kC, GRPC_CHANNEL_READY);
  h.SetState(kD, GRPC_CHANNEL_READY);
  auto counts = h.PickMany(100);
  EXPECT_EQ(counts[kC] + counts[kD], 100);
  h.record().event_engine.Advance(std::chrono::milliseconds(2));
  complete.subchannel_call_tracker->Finish({absl::OkStatus(), nullptr, nullptr});
  held = LoadBalancingPolicy::PickResult();  // the last reference to the old data goes
  EXPECT_EQ(h.PickMany(100).size(), 2u);
}

TEST(LeastRequestPickerStress, ConcurrentPicksKeepCountsExact) {
  PolicyHarness h(kPolicy);
  ASSERT_TRUE(h.Update(MakeAddresses({kA, kB, kC, kD})).ok());
  for (const char* a : {kA, kB, kC, kD}) h.SetState(a, GRPC_CHANNEL_READY);
  constexpr int kThreads = 4;
  constexpr int kPicks = 20000;
  std::vector<std::thread> threads;
  std::atomic<int> completed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      algorithms::SeedThreadRandom(100 + t);
      for (int i = 0; i < kPicks; ++i) {
        LoadBalancingPolicy::PickResult r;
        if (!h.Pick(&r).empty()) completed.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(completed.load(), kThreads * kPicks);
  // Every tracker was destroyed: with nothing in flight, two endpoints
  // compared are tied and the spread is even again.
  auto counts = h.PickMany(4000);
  for (auto& [address, n] : counts) EXPECT_NEAR(n, 1000, 150) << address;
}

}  // namespace
}  // namespace lbkit
