// LBKIT_TRACE: the policies it names log their decisions, the others stay
// quiet, and names work with or without the "lbkit_" prefix.

#include <grpc/support/log.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "policies/common/trace.h"
#include "tests/support/fake_helper.h"

namespace lbkit {
namespace {

using testing::MakeAddresses;
using testing::PolicyHarness;

std::mutex g_mu;
std::vector<std::string>* g_lines = nullptr;

void Capture(gpr_log_func_args* args) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_lines != nullptr) g_lines->push_back(args->message);
}

// Runs `fn` with LBKIT_TRACE=`value` and returns what was logged.
template <typename F>
std::vector<std::string> LogsWith(const char* value, F fn) {
  std::vector<std::string> lines;
  setenv("LBKIT_TRACE", value, 1);
  policies::ReloadTraceSettingsForTesting();
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_lines = &lines;
  }
  gpr_set_log_function(Capture);
  fn();
  gpr_set_log_function(nullptr);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_lines = nullptr;
  }
  unsetenv("LBKIT_TRACE");
  policies::ReloadTraceSettingsForTesting();
  return lines;
}

bool Logged(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
  for (const std::string& l : lines) {
    if (absl::StrContains(l, a) && absl::StrContains(l, b)) return true;
  }
  return false;
}

void RunRoundRobin() {
  PolicyHarness h("lbkit_round_robin");
  ASSERT_TRUE(h.Update(MakeAddresses({"127.0.0.1:1001", "127.0.0.1:1002"})).ok());
  h.SetState("127.0.0.1:1001", GRPC_CHANNEL_READY);
}

TEST(LbkitTrace, ANamedPolicyLogsItsPickersAndEndpoints) {
  const auto lines = LogsWith("round_robin", RunRoundRobin);
  EXPECT_TRUE(Logged(lines, "lbkit_round_robin", "picker: READY over 1 of 2 endpoints"))
      << absl::StrJoin(lines, "\n");
  EXPECT_TRUE(Logged(lines, "lbkit_round_robin", "endpoint 127.0.0.1:1001: connection READY"))
      << absl::StrJoin(lines, "\n");
}

TEST(LbkitTrace, OtherPoliciesStayQuiet) {
  const auto lines = LogsWith("lbkit_locality", RunRoundRobin);
  EXPECT_FALSE(Logged(lines, "lbkit_round_robin", "picker:")) << absl::StrJoin(lines, "\n");
  const auto off = LogsWith("", RunRoundRobin);
  EXPECT_FALSE(Logged(off, "lbkit_round_robin", "picker:")) << absl::StrJoin(off, "\n");
}

TEST(LbkitTrace, AParentLogsItsChildren) {
  const auto lines = LogsWith("all", [] {
    PolicyHarness h("lbkit_weighted_subsets");
    ASSERT_TRUE(h.Update(MakeAddresses({"127.0.0.1:1001"}),
                         R"({"subsets": [{"name": "all", "weight": 1}]})")
                    .ok());
    h.SetState("127.0.0.1:1001", GRPC_CHANNEL_READY);
  });
  EXPECT_TRUE(Logged(lines, "lbkit_weighted_subsets", "child all: created"))
      << absl::StrJoin(lines, "\n");
  EXPECT_TRUE(Logged(lines, "lbkit_weighted_subsets", "picker: READY"))
      << absl::StrJoin(lines, "\n");
}

}  // namespace
}  // namespace lbkit
