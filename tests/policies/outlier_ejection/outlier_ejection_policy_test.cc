// lbkit_outlier_ejection against a fake helper and a fake clock: config
// errors by field, ejection on consecutive errors (at once), ejection time
// growing with each ejection, the ejection budget, interval-based failure
// percentage and success rate, and local-origin failures.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/variant.h"
#include "gtest/gtest.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using grpc_core::LoadBalancingPolicy;
using testing::MakeAddresses;
using testing::ParseConfig;
using testing::PolicyHarness;
using Seconds = std::chrono::seconds;

const std::vector<std::string> kAddresses = {"127.0.0.1:5001", "127.0.0.1:5002",
                                             "127.0.0.1:5003", "127.0.0.1:5004"};

// One call: picked, started and finished with the status `status_of` gives
// for the endpoint it went to. Returns that endpoint ("" if none).
std::string Call(PolicyHarness& h, const std::function<absl::Status(const std::string&)>& status_of) {
  LoadBalancingPolicy::PickResult result = LoadBalancingPolicy::PickResult::Fail(absl::OkStatus());
  const std::string address = h.Pick(&result);
  auto* complete = absl::get_if<LoadBalancingPolicy::PickResult::Complete>(&result.result);
  if (complete == nullptr || complete->subchannel_call_tracker == nullptr) return address;
  complete->subchannel_call_tracker->Start();
  complete->subchannel_call_tracker->Finish({status_of(address), nullptr, nullptr});
  return address;
}

// Calls until `n` have gone to `victim` (bounded), failing those with
// `error`; returns the calls made.
int FailOn(PolicyHarness& h, const std::string& victim, int n, absl::Status error) {
  int calls = 0, hits = 0;
  while (hits < n && calls < 1000) {
    ++calls;
    if (Call(h, [&](const std::string& a) { return a == victim ? error : absl::OkStatus(); }) ==
        victim) {
      ++hits;
    }
  }
  return calls;
}

std::map<std::string, int> Spread(PolicyHarness& h, int n) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) ++counts[Call(h, [](const std::string&) { return absl::OkStatus(); })];
  return counts;
}

void Start(PolicyHarness& h, const std::string& config) {
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), config).ok());
  for (const auto& a : kAddresses) h.SetState(a, GRPC_CHANNEL_READY);
  ASSERT_EQ(h.record().state, GRPC_CHANNEL_READY);
}

TEST(OutlierEjectionConfig, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {R"({"interval": "0s", "baseEjectionTime": "ten"})",
       "[field:baseEjectionTime error:Not a duration (no s suffix); field:interval error:must be "
       "greater than 0]"},
      {R"({"maxEjectionPercent": 101, "minHealthPercent": 200})",
       "[field:maxEjectionPercent error:must be a percentage in [0, 100]; "
       "field:minHealthPercent error:must be a percentage in [0, 100]]"},
      {R"({"errorStatusCodes": ["UNAVAILABLE", "BROKEN", "OK"]})",
       "[field:errorStatusCodes[1] error:is not a gRPC status code name (e.g. UNAVAILABLE); "
       "field:errorStatusCodes[2] error:OK cannot be an error]"},
      {R"({"failurePercentageEjection": {"threshold": 101}})",
       "[field:failurePercentageEjection.threshold error:must be a percentage in [0, 100]]"},
      {R"({"successRateEjection": {"enforcementPercentage": 150}})",
       "[field:successRateEjection.enforcementPercentage error:must be a percentage in [0, "
       "100]]"},
      {R"({"consecutive5xxErrors": -1})",
       "[field:consecutive5xxErrors error:failed to parse non-negative number]"},
      {R"({"childPolicy": [{"nope": {}}]})",
       "[field:childPolicy error:No known policies in list: nope]"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig("lbkit_outlier_ejection", c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(std::string(config.status().message()),
              std::string("errors validating lbkit_outlier_ejection LB policy config: ") +
                  c.message)
        << c.json;
  }
  EXPECT_TRUE(ParseConfig("lbkit_outlier_ejection", "{}").ok());
}

TEST(OutlierEjectionPolicy, EjectsAtOnceAfterConsecutiveErrorsAndBringsItBack) {
  PolicyHarness h("lbkit_outlier_ejection");
  // A long interval: its ticks would earn back ejection multiples (A50).
  Start(h, R"({"consecutive5xxErrors": 5, "interval": "1000s"})");
  const std::string victim = kAddresses[1];
  FailOn(h, victim, 4, absl::UnavailableError("boom"));
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);  // 4 errors: still in
  // An OK call broke the run above; 5 in a row now.
  FailOn(h, victim, 5, absl::InternalError("boom"));
  auto spread = Spread(h, 300);
  EXPECT_EQ(spread.count(victim), 0u) << "ejected right after the 5th error";
  EXPECT_EQ(spread.size(), 3u);

  // 30 s (baseEjectionTime) later it is back.
  h.record().event_engine.Advance(Seconds(29));
  EXPECT_EQ(Spread(h, 300).count(victim), 0u);
  h.record().event_engine.Advance(Seconds(1));
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);

  // Ejected again at once: now for 2 x 30 s.
  FailOn(h, victim, 5, absl::DeadlineExceededError("slow"));
  EXPECT_EQ(Spread(h, 300).count(victim), 0u);
  h.record().event_engine.Advance(Seconds(59));
  EXPECT_EQ(Spread(h, 300).count(victim), 0u);
  h.record().event_engine.Advance(Seconds(1));
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);
}

TEST(OutlierEjectionPolicy, OnlyConfiguredCodesCount) {
  PolicyHarness h("lbkit_outlier_ejection");
  Start(h, R"({"consecutive5xxErrors": 3, "errorStatusCodes": ["RESOURCE_EXHAUSTED"]})");
  const std::string victim = kAddresses[2];
  FailOn(h, victim, 10, absl::UnavailableError("not counted"));
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);
  FailOn(h, victim, 3, absl::ResourceExhaustedError("counted"));
  EXPECT_EQ(Spread(h, 400).count(victim), 0u);
}

TEST(OutlierEjectionPolicy, MaxEjectionPercentAndMinHealthPercent) {
  const std::vector<std::string> failing(kAddresses.begin(), kAddresses.begin() + 3);
  auto fail_three = [&](PolicyHarness& h) {
    for (int round = 0; round < 3; ++round) {
      for (const auto& victim : failing) FailOn(h, victim, 5, absl::UnavailableError("x"));
    }
  };
  {
    // Default 10% of 4: one (always one may go).
    PolicyHarness h("lbkit_outlier_ejection");
    Start(h, R"({"consecutive5xxErrors": 5})");
    fail_three(h);
    EXPECT_EQ(Spread(h, 400).size(), 3u);
  }
  {
    PolicyHarness h("lbkit_outlier_ejection");
    Start(h, R"({"consecutive5xxErrors": 5, "maxEjectionPercent": 50})");
    fail_three(h);
    EXPECT_EQ(Spread(h, 400).size(), 2u);
  }
  {
    // Up to 100%, but 50% must stay: two out.
    PolicyHarness h("lbkit_outlier_ejection");
    Start(h, R"({"consecutive5xxErrors": 5, "maxEjectionPercent": 100, "minHealthPercent": 50})");
    fail_three(h);
    EXPECT_EQ(Spread(h, 400).size(), 2u);
  }
}

TEST(OutlierEjectionPolicy, FailurePercentageAtTheInterval) {
  PolicyHarness h("lbkit_outlier_ejection");
  Start(h, R"({"consecutive5xxErrors": 0, "interval": "1s", "maxEjectionPercent": 50,
               "failurePercentageEjection": {"threshold": 50, "requestVolume": 20,
                                             "minimumHosts": 3}})");
  const std::string victim = kAddresses[0];
  // The victim fails 3 of every 4 calls (never 5 in a row matters not: the
  // consecutive check is off).
  int n = 0;
  for (int i = 0; i < 400; ++i) {
    Call(h, [&](const std::string& a) {
      return a == victim && (n++ % 4 != 0) ? absl::UnavailableError("x") : absl::OkStatus();
    });
  }
  h.record().event_engine.Advance(Seconds(1));
  EXPECT_EQ(Spread(h, 400).count(victim), 0u);
}

TEST(OutlierEjectionPolicy, SuccessRateAtTheInterval) {
  const std::vector<std::string> five = {"127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003",
                                         "127.0.0.1:5004", "127.0.0.1:5005"};
  PolicyHarness h("lbkit_outlier_ejection");
  ASSERT_TRUE(h.Update(MakeAddresses(five), R"({"consecutive5xxErrors": 0, "interval": "1s",
      "successRateEjection": {"requestVolume": 50}})")
                  .ok());
  for (const auto& a : five) h.SetState(a, GRPC_CHANNEL_READY);
  const std::string victim = five[3];
  int n = 0;
  for (int i = 0; i < 1000; ++i) {
    Call(h, [&](const std::string& a) {
      return a == victim && (n++ % 2 == 0) ? absl::UnavailableError("x") : absl::OkStatus();
    });
  }
  h.record().event_engine.Advance(Seconds(1));
  auto spread = Spread(h, 400);
  EXPECT_EQ(spread.count(victim), 0u);
  EXPECT_EQ(spread.size(), 4u);
}

// Picks until a pick goes to `victim` (bounded) and leaves it unstarted:
// the channel re-queues a pick whose connection just failed.
void PickWithoutStarting(PolicyHarness& h, const std::string& victim) {
  for (int i = 0; i < 100; ++i) {
    LoadBalancingPolicy::PickResult result = LoadBalancingPolicy::PickResult::Fail(absl::OkStatus());
    if (h.Pick(&result) == victim) return;
  }
  ADD_FAILURE() << "no pick went to " << victim;
}

TEST(OutlierEjectionPolicy, ConnectionFailuresAreLocalOriginFailures) {
  PolicyHarness h("lbkit_outlier_ejection");
  Start(h, R"({"consecutive5xxErrors": 0, "splitExternalLocalOriginErrors": true,
               "consecutiveLocalOriginFailures": 3})");
  const std::string victim = kAddresses[3];
  // A connection that fails under a call routed to it (the call never
  // starts) is a local-origin failure.
  auto fail_connection = [&] {
    PickWithoutStarting(h, victim);
    h.SetState(victim, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("refused"));
    h.SetState(victim, GRPC_CHANNEL_READY);
  };
  // Two failed connections, then a call that reached it: the run is broken.
  for (int i = 0; i < 2; ++i) fail_connection();
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);
  for (int i = 0; i < 2; ++i) fail_connection();
  fail_connection();  // connected again, but ejected
  EXPECT_EQ(Spread(h, 400).count(victim), 0u);
  h.record().event_engine.Advance(Seconds(30));
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);
}

// An address no call is routed to (never reachable: stale DNS, a pod being
// replaced) is not an outlier: its failed connection attempts do not count,
// and it never spends the ejection budget. Before the fix, its attempts
// ejected it, and with 4 endpoints at the default 10% a backend failing
// every call then stayed in rotation for good ("1 of 4 already are").
TEST(OutlierEjectionPolicy, AnUnreachableEndpointNeverSpendsTheBudget) {
  for (const char* config : {R"({})", R"({"splitExternalLocalOriginErrors": true})"}) {
    PolicyHarness h("lbkit_outlier_ejection");
    ASSERT_TRUE(h.Update(MakeAddresses(kAddresses), config).ok());
    const std::string dead = kAddresses[0], failing = kAddresses[1];
    for (const auto& a : kAddresses) {
      if (a != dead) h.SetState(a, GRPC_CHANNEL_READY);
    }
    for (int attempt = 0; attempt < 20; ++attempt) {
      h.SetState(dead, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("refused"));
      h.SetState(dead, GRPC_CHANNEL_CONNECTING);
    }
    h.SetState(dead, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("refused"));
    // Exactly consecutive5xxErrors (5) failures eject the failing backend.
    FailOn(h, failing, 4, absl::InternalError("boom"));
    // Picks alone (no call finishes, so the run of errors stands).
    EXPECT_EQ(h.PickMany(300).count(failing), 1u) << config << ": out after 4 errors";
    FailOn(h, failing, 1, absl::InternalError("boom"));
    auto spread = Spread(h, 300);
    EXPECT_EQ(spread.count(failing), 0u) << config << ": still in after 5 errors";
    EXPECT_EQ(spread.size(), 2u) << config;
  }
}

// The budget counts connected ejected endpoints. One ejected while its
// connection was down (calls had been routed to it) does not hold the
// budget against a backend failing every call; if it then connects again
// with the budget spent, it comes back rather than take more endpoints out
// of service than maxEjectionPercent allows.
TEST(OutlierEjectionPolicy, AnEjectedEndpointThatReconnectsDoesNotOverspendTheBudget) {
  PolicyHarness h("lbkit_outlier_ejection");
  Start(h, R"({"consecutive5xxErrors": 5, "baseEjectionTime": "300s"})");
  const std::string flapping = kAddresses[0], failing = kAddresses[1];
  for (int i = 0; i < 5; ++i) {  // five connections lost under calls: ejected
    PickWithoutStarting(h, flapping);
    h.SetState(flapping, GRPC_CHANNEL_TRANSIENT_FAILURE, absl::UnavailableError("reset"));
    if (i < 4) h.SetState(flapping, GRPC_CHANNEL_READY);
  }
  // Still disconnected: the failing backend may be ejected too.
  FailOn(h, failing, 5, absl::InternalError("boom"));
  auto spread = Spread(h, 300);
  EXPECT_EQ(spread.count(failing), 0u);
  EXPECT_EQ(spread.count(flapping), 0u);
  // The flapping one connects again: with it, 2 of 4 would be out (10%
  // allows one), so it is back.
  h.SetState(flapping, GRPC_CHANNEL_READY);
  spread = Spread(h, 300);
  EXPECT_EQ(spread.count(flapping), 1u);
  EXPECT_EQ(spread.count(failing), 0u);
}

// Interval 10 s and baseEjectionTime 10 s: un-ejections fall due at the
// same instant as interval ticks. The k-th ejection in a row must last
// k x 10 s: a tick may forgive a step only after a whole interval back in,
// not one that came back at that very instant.
TEST(OutlierEjectionPolicy, EjectionTimeGrowsWhenUnejectionAndTickCoincide) {
  PolicyHarness h("lbkit_outlier_ejection");
  Start(h, R"({"consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "10s",
               "maxEjectionTime": "300s"})");
  const std::string victim = kAddresses[2];
  for (int k = 1; k <= 5; ++k) {
    FailOn(h, victim, 5, absl::UnavailableError("boom"));
    ASSERT_EQ(Spread(h, 100).count(victim), 0u) << "ejection " << k;
    h.record().event_engine.Advance(Seconds(10 * k - 1));
    EXPECT_EQ(Spread(h, 100).count(victim), 0u) << "ejection " << k << " ended early";
    h.record().event_engine.Advance(Seconds(1));
    EXPECT_EQ(Spread(h, 100).count(victim), 1u) << "ejection " << k << " not over after "
                                                 << 10 * k << " s";
  }
}

// A config update that leaves no way to eject brings every ejected
// endpoint back at once, as gRPC's outlier_detection does.
TEST(OutlierEjectionPolicy, DisablingEjectionBringsEveryEndpointBack) {
  PolicyHarness h("lbkit_outlier_ejection");
  Start(h, R"({"consecutive5xxErrors": 5, "baseEjectionTime": "300s"})");
  const std::string victim = kAddresses[0];
  FailOn(h, victim, 5, absl::UnavailableError("boom"));
  ASSERT_EQ(Spread(h, 300).count(victim), 0u);
  ASSERT_TRUE(h.Update(MakeAddresses(kAddresses),
                       R"({"consecutive5xxErrors": 0, "consecutiveGatewayErrors": 0})")
                  .ok());
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);
  // Nothing counts any more, and no timer is left running.
  FailOn(h, victim, 20, absl::UnavailableError("boom"));
  EXPECT_EQ(Spread(h, 400).count(victim), 1u);
  EXPECT_EQ(h.record().event_engine.pending(), 0u);
}

TEST(OutlierEjectionPolicy, WorksUnderAnyChildAndStopsItsTimersOnShutdown) {
  for (const char* child : {"lbkit_least_request", "round_robin"}) {
    auto h = std::make_unique<PolicyHarness>("lbkit_outlier_ejection");
    Start(*h, absl::StrCat(R"({"childPolicy": [{")", child, R"(": {}}]})"));
    FailOn(*h, kAddresses[0], 5, absl::UnavailableError("x"));
    EXPECT_EQ(Spread(*h, 400).count(kAddresses[0]), 0u) << child;
    EXPECT_GT(h->record().event_engine.pending(), 0u);  // interval and un-ejection
    h->ShutdownPolicy();
    EXPECT_EQ(h->record().event_engine.pending(), 0u) << child;
  }
}

}  // namespace
}  // namespace lbkit
