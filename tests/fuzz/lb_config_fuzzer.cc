// Fuzzes every lbkit policy's config parser, through the parse a channel
// does. The first byte picks the policy (kPolicies, README order); the rest
// is that policy's config object, wrapped as
//   {"loadBalancingConfig":[{"NAME": REST}]}
// so most inputs reach the policy's own parser instead of dying in the
// outer JSON. A first byte past the list feeds the rest as a whole service
// config (retryPolicy, healthCheckConfig and friends around lbkit's).
//
// Beyond "no crash": a config that parses once parses the same way twice
// (no hidden state in the parsers), and a rejection names a field.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lbkit/channel.h"
#include "lbkit/lbkit.h"
#include "policies/register.h"
#include "tests/fuzz/fuzz_support.h"

const char lbkit::fuzz::kFuzzerName[] = "lb_config_fuzzer";
using lbkit::fuzz::Fail;

namespace {

constexpr size_t kPolicyCount = sizeof(lbkit::policies::kPolicies) /
                                sizeof(lbkit::policies::kPolicies[0]);


}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  lbkit::fuzz::InitLbkit();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string config;
  if (data[0] < kPolicyCount) {
    config = absl::StrCat(R"({"loadBalancingConfig":[{")",
                          lbkit::policies::kPolicies[data[0]].name, "\": ", rest, "}]}");
  } else {
    config = rest;
  }
  const absl::Status first = lbkit::ValidateServiceConfig(config);
  const absl::Status second = lbkit::ValidateServiceConfig(config);
  if (first != second) {
    Fail("two parses of one config disagree", config,
         absl::StrCat(first.ToString(), " vs ", second.ToString()));
  }
  if (!first.ok()) {
    if (first.code() != absl::StatusCode::kInvalidArgument) {
      Fail("a rejection is not INVALID_ARGUMENT", config, first.ToString());
    }
    // gRPC's validation errors carry the JSON path; a JSON syntax error
    // names the position instead.
    if (!absl::StrContains(first.message(), "field:") &&
        !absl::StrContains(first.message(), "JSON") &&
        !absl::StrContains(first.message(), "json")) {
      Fail("a rejection names neither a field nor the JSON error", config, first.ToString());
    }
  }
  return 0;
}
