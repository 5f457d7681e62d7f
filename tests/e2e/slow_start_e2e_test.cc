// Slow start end to end: three greeter servers take calls through an
// lbkit-file endpoints file; a fourth is added to the file under traffic
// and ramps up over the window (Istio's warmupDurationSecs) instead of
// taking its quarter at once. Shares are compared between the start and
// the end of the ramp, never against a wall-clock bound.

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/temp_files.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Clock = std::chrono::steady_clock;

std::string Endpoints(const std::vector<std::unique_ptr<BackendProcess>>& backends, size_t n) {
  std::vector<std::string> entries;
  for (size_t i = 0; i < n; ++i) {
    entries.push_back(absl::StrCat(R"({"address": ")", backends[i]->address(), R"("})"));
  }
  return absl::StrCat(R"({"endpoints": [)", absl::StrJoin(entries, ", "), "]}\n");
}

class SlowStartE2E : public ::testing::TestWithParam<const char*> {};

TEST_P(SlowStartE2E, AnAddedBackendRampsUpOverTheWindow) {
  std::vector<std::unique_ptr<BackendProcess>> backends;
  for (int i = 0; i < 4; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("b", i)));
  testing::TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  testing::WriteAtomically(path, Endpoints(backends, 3));
  auto channel = testing::MakeChannel(
      "lbkit-file://" + path,
      absl::StrCat(R"({"loadBalancingConfig": [{")", GetParam(),
                   R"(": {"slowStart": {"window": "6s"}}}]})"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"b0", "b1", "b2"}));
  // The first three are past their own ramp before the fourth comes.
  std::this_thread::sleep_for(std::chrono::seconds(7));

  testing::WriteAtomically(path, Endpoints(backends, 4));
  ASSERT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("b3") > 0;
  }));
  // The newcomer's share in each second of the window and after it.
  std::vector<double> curve;
  const auto start = Clock::now();
  for (int second = 0; second < 9; ++second) {
    testing::Tally tally;
    while (Clock::now() - start < std::chrono::seconds(second + 1)) {
      const testing::Tally batch = testing::CallMany(*stub, 50);
      for (const auto& [b, n] : batch.per_backend) tally.per_backend[b] += n;
      for (const auto& [code, n] : batch.errors) tally.errors[code] += n;
    }
    int total = 0;
    for (const auto& [b, n] : tally.per_backend) total += n;
    EXPECT_EQ(tally.failed(), 0);
    curve.push_back(total == 0 ? 0 : 100.0 * tally.per_backend["b3"] / total);
  }
  printf("%s, window 6 s: newcomer share per second: %s\n", GetParam(),
         absl::StrJoin(curve, ", ", [](std::string* out, double v) {
           absl::StrAppend(out, absl::StrFormat("%.1f%%", v));
         }).c_str());
  // Ramping: well under its quarter at first, its quarter after the window.
  EXPECT_LT(curve[0], 12.0);
  EXPECT_LT(curve[0], curve[4]);
  EXPECT_NEAR(curve[8], 25.0, 6.0);
}

INSTANTIATE_TEST_SUITE_P(Policies, SlowStartE2E,
                         ::testing::Values("lbkit_round_robin", "lbkit_least_request"));

}  // namespace
}  // namespace lbkit
