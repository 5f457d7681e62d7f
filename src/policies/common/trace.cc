#include "policies/common/trace.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include <grpc/support/log.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace lbkit::policies {

namespace {

struct TraceSettings {
  bool all = false;
  std::set<std::string, std::less<>> policies;
};

const TraceSettings& Settings() {
  static const TraceSettings* settings = [] {
    auto* s = new TraceSettings;
    const char* env = std::getenv("LBKIT_TRACE");
    if (env == nullptr) return s;
    for (absl::string_view name : absl::StrSplit(env, ',', absl::SkipWhitespace())) {
      name = absl::StripAsciiWhitespace(name);
      if (name == "all" || name == "1" || name == "true") s->all = true;
      s->policies.emplace(name);
    }
    return s;
  }();
  return *settings;
}

}  // namespace

bool TraceEnabled(absl::string_view policy) {
  const TraceSettings& s = Settings();
  if (s.all) return true;
  return !s.policies.empty() && s.policies.find(policy) != s.policies.end();
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
