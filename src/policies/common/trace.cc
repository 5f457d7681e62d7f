#include "policies/common/trace.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <grpc/support/log.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lbkit::policies {

namespace {

struct TraceSettings {
  bool all = false;
  std::set<std::string, std::less<>> policies;
};

TraceSettings* ReadSettings() {
  auto* s = new TraceSettings;
  const char* env = std::getenv("LBKIT_TRACE");
  if (env == nullptr) return s;
  for (absl::string_view name : absl::StrSplit(env, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    if (name == "all" || name == "1" || name == "true") s->all = true;
    // "round_robin" and "lbkit_round_robin" both name lbkit_round_robin.
    s->policies.emplace(absl::StartsWith(name, "lbkit_") ? std::string(name)
                                                         : absl::StrCat("lbkit_", name));
  }
  // gRPC prints only ERROR by default (GRPC_VERBOSITY): asking for a trace
  // must show it, as GRPC_VERBOSITY=info would.
  if (!s->policies.empty() && !gpr_should_log(GPR_LOG_SEVERITY_INFO)) {
    gpr_set_log_verbosity(GPR_LOG_SEVERITY_INFO);
  }
  return s;
}

std::atomic<TraceSettings*> g_settings{nullptr};

const TraceSettings& Settings() {
  TraceSettings* s = g_settings.load(std::memory_order_acquire);
  if (s != nullptr) return *s;
  static TraceSettings* first = ReadSettings();
  TraceSettings* expected = nullptr;
  g_settings.compare_exchange_strong(expected, first, std::memory_order_acq_rel);
  return *g_settings.load(std::memory_order_acquire);
}

}  // namespace

bool TraceEnabled(absl::string_view policy) {
  const TraceSettings& s = Settings();
  if (s.all) return true;
  return !s.policies.empty() && s.policies.find(policy) != s.policies.end();
}

void ReloadTraceSettingsForTesting() {
  // The previous settings are kept, not freed: a trace point on another
  // thread may still be reading them (and kept reachable, they are no leak).
  static auto* retired = new std::vector<TraceSettings*>;
  TraceSettings* old = g_settings.exchange(ReadSettings(), std::memory_order_acq_rel);
  if (old != nullptr) retired->push_back(old);
}

void TraceLog(absl::string_view policy, const void* instance, const char* format, ...) {
  char text[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof(text), format, args);
  va_end(args);
  gpr_log(GPR_INFO, "%.*s %p: %s", static_cast<int>(policy.size()), policy.data(), instance,
          text);
}

}  // namespace lbkit::policies
