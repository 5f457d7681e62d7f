#include "lbkit/lbkit.h"

#include <algorithm>
#include <atomic>

#include <cstdlib>

#include <grpc/grpc.h>
#include <grpc/support/log.h>

#include "absl/base/call_once.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/fast_clock.h"
#include "grpc_internal/abi_guard.h"
#include "grpc_internal/core_configuration_state.h"
#include "lbkit/version.h"
#include "policies/register.h"
#include "resolvers/register.h"
#include "src/core/lib/config/core_configuration.h"

namespace lbkit {
namespace {

absl::once_flag g_register_once;
// Written once inside call_once, read after it: call_once orders the two.
absl::Status* g_register_status = nullptr;
std::atomic<bool> g_registered{false};

void DoRegister() {
  if (grpc_internal::CoreConfigurationBuilt()) {
    g_register_status = new absl::Status(absl::FailedPreconditionError(
        "lbkit::RegisterAll() was called after gRPC built its core "
        "configuration (a channel or server already exists), when gRPC no "
        "longer accepts new load-balancing policies; nothing was registered. "
        "Call lbkit::RegisterAll() at the start of main(), before the first "
        "channel or server is created."));
    return;
  }
  grpc_core::CoreConfiguration::RegisterBuilder(
      [](grpc_core::CoreConfiguration::Builder* builder) {
        for (const policies::PolicyEntry& policy : policies::kPolicies) {
          policy.register_policy(builder);
        }
        for (const resolvers::ResolverEntry& resolver : resolvers::kResolvers) {
          resolver.register_resolver(builder);
        }
      });
  // Now, not on the first call: calibrating spins for 2 ms.
  internal::CalibrateCycleClock();
  g_register_status = new absl::Status();
  g_registered.store(true, std::memory_order_release);
}

// LBKIT_TRACE=round_robin,lbkit_locality (or "all") turns on the decision
// logs of those policies (policies/common/trace.h reads it where they log);
// "child_policy" is gRPC's own trace flag of the child policy handler that
// lbkit's parent policies run their children in. Here the names are only
// checked, so a typo is reported rather than silently tracing nothing.
void EnableTracesFromEnvironment() {
  const char* env = std::getenv("LBKIT_TRACE");
  if (env == nullptr || *env == '\0') return;
  std::vector<std::string> known = {"all", "child_policy"};
  for (const policies::PolicyEntry& policy : policies::kPolicies) {
    known.push_back(std::string(absl::StripPrefix(policy.name, "lbkit_")));
  }
  for (absl::string_view name : absl::StrSplit(env, ',', absl::SkipWhitespace())) {
    name = absl::StripPrefix(absl::StripAsciiWhitespace(name), "lbkit_");
    if (name == "all" || name == "1" || name == "true" || name == "child_policy") {
      grpc_tracer_set_enabled("lbkit_child_policy", 1);
    }
    if (name == "1" || name == "true" ||
        std::find(known.begin(), known.end(), name) != known.end()) {
      continue;
    }
    gpr_log(GPR_ERROR, "LBKIT_TRACE: unknown trace \"%s\" (known: %s)",
            std::string(name).c_str(), absl::StrJoin(known, ", ").c_str());
  }
}

}  // namespace

absl::Status RegisterAll() {
  absl::call_once(g_register_once, DoRegister);
  static absl::once_flag traces;
  absl::call_once(traces, EnableTracesFromEnvironment);
  return *g_register_status;
}

bool IsRegistered() { return g_registered.load(std::memory_order_acquire); }

std::vector<std::string> PolicyNames() {
  std::vector<std::string> names;
  for (const policies::PolicyEntry& policy : policies::kPolicies) {
    names.emplace_back(policy.name);
  }
  return names;
}

std::vector<std::string> ResolverSchemes() {
  std::vector<std::string> schemes;
  for (const resolvers::ResolverEntry& resolver : resolvers::kResolvers) {
    schemes.emplace_back(resolver.scheme);
  }
  return schemes;
}

const char* Version() { return LBKIT_VERSION_STRING; }

}  // namespace lbkit
