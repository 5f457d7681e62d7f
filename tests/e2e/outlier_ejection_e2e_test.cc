// lbkit_outlier_ejection end to end, 4 greeter servers: a backend failing
// every call is ejected after consecutive5xxErrors failures; a frozen one
// (SIGSTOP, calls time out at 200 ms) is ejected and gets traffic again
// after the ejection time once thawed, losing fewer calls than gRPC's
// outlier_detection_experimental (failure percentage, 1 s interval) in the
// same run; maxEjectionPercent and minHealthPercent hold with 3 of 4 failing.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <ratio>
#include <set>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

#include "absl/strings/str_cat.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Backends = std::vector<std::unique_ptr<BackendProcess>>;
using Clock = std::chrono::steady_clock;

std::string Config(const std::string& policy_json) {
  return absl::StrCat(R"({"loadBalancingConfig": [)", policy_json, "]}");
}

// `threads` callers for `duration` (bounded), each call with `deadline_ms`.
struct Load {
  std::atomic<int> ok{0}, failed{0};
  std::mutex mu;
  std::map<std::string, int> per_backend;
  std::vector<int64_t> failure_ms;  // since the start
};

void RunLoad(examples::Greeter::Stub& stub, int threads, std::chrono::milliseconds duration,
             int deadline_ms, Load* load, const std::function<void(int64_t ms)>& at_ms = {}) {
  const auto start = Clock::now();
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      while (!stop) {
        testing::CallResult r = testing::CallOnce(stub, deadline_ms);
        const int64_t ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        std::lock_guard<std::mutex> lock(load->mu);
        if (r.status.ok()) {
          ++load->ok;
          ++load->per_backend[r.backend];
        } else {
          ++load->failed;
          load->failure_ms.push_back(ms);
        }
      }
    });
  }
  while (Clock::now() - start < duration) {
    if (at_ms) {
      at_ms(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : pool) t.join();
}

TEST(OutlierEjectionE2E, AFailingBackendIsEjectedAfterConsecutive5xxErrors) {
  Backends backends;
  backends.push_back(
      BackendProcess::Start("bad", {"--error_rate=1", "--error_code=UNAVAILABLE"}));
  for (int i = 0; i < 3; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("ok-", i)));
  auto channel = testing::MakeChannel(
      testing::Ipv4Target(backends),
      Config(R"({"lbkit_outlier_ejection": {"consecutive5xxErrors": 5,
                 "childPolicy": [{"lbkit_round_robin": {}}]}})"));
  auto stub = examples::Greeter::NewStub(channel);
  // Sequential calls: the 5th failure ejects the backend before the round
  // robin comes back to it.
  testing::Tally tally = testing::CallMany(*stub, 400);
  printf("outlier ejection: %d calls failed before the failing backend was ejected "
         "(consecutive5xxErrors 5)\n",
         tally.failed());
  EXPECT_EQ(tally.failed(), 5) << tally.first_error;
  EXPECT_EQ(tally.per_backend.count("bad"), 0u);

  // 16 in flight from now on: nothing fails while it is out.
  Load load;
  RunLoad(*stub, 16, std::chrono::milliseconds(500), 2000, &load);
  EXPECT_EQ(load.failed, 0);
  EXPECT_GT(load.ok, 100);
}

// One frozen backend of 4, 16 in flight, 200 ms deadlines; returns the calls
// lost and the time of the last loss after the freeze.
struct FreezeResult {
  int lost = 0;
  int64_t last_loss_ms = 0;
  std::map<std::string, int> per_backend_after;
};

FreezeResult Freeze(const std::string& policy_json, Backends& backends,
                    std::chrono::milliseconds run_for) {
  auto channel = testing::MakeChannel(testing::Ipv4Target(backends), Config(policy_json));
  auto stub = examples::Greeter::NewStub(channel);
  std::set<std::string> names;
  for (const auto& b : backends) names.insert(b->name());
  EXPECT_TRUE(testing::WaitForBackends(*stub, names));
  backends[0]->Signal(SIGSTOP);
  Load load;
  RunLoad(*stub, 16, run_for, 200, &load);
  backends[0]->Signal(SIGCONT);
  FreezeResult r;
  r.lost = load.failed;
  for (int64_t ms : load.failure_ms) r.last_loss_ms = std::max(r.last_loss_ms, ms);
  return r;
}

TEST(OutlierEjectionE2E, AFrozenBackendCostsFewerCallsThanGrpcsOutlierDetection) {
  Backends backends;
  for (int i = 0; i < 4; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("f-", i)));
  const FreezeResult lbkit = Freeze(
      R"({"lbkit_outlier_ejection": {"consecutive5xxErrors": 5, "baseEjectionTime": "30s",
          "childPolicy": [{"lbkit_round_robin": {}}]}})",
      backends, std::chrono::milliseconds(2500));
  const FreezeResult grpc = Freeze(
      R"({"outlier_detection_experimental": {"interval": "1s", "baseEjectionTime": "30s",
          "maxEjectionPercent": 25,
          "failurePercentageEjection": {"threshold": 50, "enforcementPercentage": 100,
                                        "minimumHosts": 4, "requestVolume": 10},
          "childPolicy": [{"round_robin": {}}]}})",
      backends, std::chrono::milliseconds(2500));
  printf("frozen backend, 16 in flight, 200 ms deadlines: lbkit_outlier_ejection lost %d "
         "calls (last at %lld ms); gRPC outlier_detection_experimental (failure percentage, "
         "1 s interval) lost %d (last at %lld ms)\n",
         lbkit.lost, static_cast<long long>(lbkit.last_loss_ms), grpc.lost,
         static_cast<long long>(grpc.last_loss_ms));
  EXPECT_GE(lbkit.lost, 5);
  EXPECT_LE(lbkit.lost, 5 + 16);  // at most the calls in flight when ejected
  EXPECT_LT(2 * lbkit.lost, grpc.lost);
}

TEST(OutlierEjectionE2E, AThawedBackendGetsTrafficAfterTheEjectionTime) {
  Backends backends;
  for (int i = 0; i < 4; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("t-", i)));
  auto channel = testing::MakeChannel(
      testing::Ipv4Target(backends),
      Config(R"({"lbkit_outlier_ejection": {"consecutive5xxErrors": 3, "baseEjectionTime": "1s",
                 "interval": "60s"}})"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"t-0", "t-1", "t-2", "t-3"}));
  backends[0]->Signal(SIGSTOP);
  Load frozen;
  RunLoad(*stub, 4, std::chrono::milliseconds(400), 100, &frozen);
  backends[0]->Signal(SIGCONT);
  EXPECT_GE(frozen.failed, 3);
  // Ejected for 1 s from the 3rd timeout; after that, back in the rotation.
  const auto thawed = Clock::now();
  ASSERT_TRUE(testing::CallUntil(*stub, 40, [](const testing::Tally& t) {
    return t.per_backend.count("t-0") > 0;
  }));
  const double back_ms = std::chrono::duration<double, std::milli>(Clock::now() - thawed).count();
  printf("thawed backend back in rotation %.0f ms after SIGCONT (ejection time 1 s)\n", back_ms);
  EXPECT_LT(back_ms, 5000);
}

TEST(OutlierEjectionE2E, TheEjectionBudgetHoldsWithThreeOfFourFailing) {
  for (const auto& [budget, expected_serving] :
       {std::pair<std::string, size_t>{R"("maxEjectionPercent": 50)", 2},
        {R"("maxEjectionPercent": 100, "minHealthPercent": 75)", 3}}) {
    Backends backends;
    for (int i = 0; i < 3; ++i) {
      backends.push_back(BackendProcess::Start(absl::StrCat("bad-", i),
                                               {"--error_rate=1", "--error_code=INTERNAL"}));
    }
    backends.push_back(BackendProcess::Start("good"));
    auto channel = testing::MakeChannel(
        testing::Ipv4Target(backends),
        Config(absl::StrCat(R"({"lbkit_outlier_ejection": {"consecutive5xxErrors": 3, )", budget,
                            "}}")));
    auto stub = examples::Greeter::NewStub(channel);
    testing::CallMany(*stub, 300);  // enough for every failing one to reach 3 in a row
    Load load;
    RunLoad(*stub, 1, std::chrono::milliseconds(300), 2000, &load);
    const int total = load.ok + load.failed;
    // With k endpoints still in rotation (round robin), the good one gets 1/k.
    const double good_share = static_cast<double>(load.ok) / total;
    printf("3 of 4 failing, %s: good backend's share %.2f (expected 1/%zu)\n", budget.c_str(),
           good_share, expected_serving);
    EXPECT_NEAR(good_share, 1.0 / expected_serving, 0.05) << budget;
  }
}

}  // namespace
}  // namespace lbkit
