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
  g_register_status = new absl::Status();
  g_registered.store(true, std::memory_order_release);
}

// lbkit's trace flags, as LBKIT_TRACE names them (without "lbkit_").
constexpr const char* kTraceFlags[] = {"round_robin", "outlier_ejection", "child_policy"};

// LBKIT_TRACE=round_robin,outlier_ejection (or "all") turns lbkit's decision
// logs on; gRPC's GRPC_TRACE=lbkit_round_robin,... does the same.
void EnableTracesFromEnvironment() {
  const char* env = std::getenv("LBKIT_TRACE");
  if (env == nullptr || *env == '\0') return;
  for (absl::string_view name : absl::StrSplit(env, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    if (name == "all") {
      for (const char* flag : kTraceFlags) grpc_tracer_set_enabled(absl::StrCat("lbkit_", flag).c_str(), 1);
    } else if (!grpc_tracer_set_enabled(absl::StrCat("lbkit_", name).c_str(), 1)) {
      gpr_log(GPR_ERROR, "LBKIT_TRACE: unknown trace \"%s\" (known: all, %s)",
              std::string(name).c_str(), absl::StrJoin(kTraceFlags, ", ").c_str());
    }
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
