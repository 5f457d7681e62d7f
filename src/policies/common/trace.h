// Decision tracing for lbkit's policies, as gRPC traces its own (GRPC_TRACE):
// with $LBKIT_TRACE set to "all", or to a comma-separated list of policy
// names (with or without "lbkit_"), each listed policy logs its state
// reports, picker swaps, child and endpoint changes and ejection decisions at
// INFO, one line each, tagged with the policy's name and instance.
// RegisterAll() reports names it does not know. gRPC prints only errors
// unless GRPC_VERBOSITY says otherwise, so a trace that names a policy
// lowers gRPC's verbosity to INFO at the first trace point.
//
//   LBKIT_TRACE=locality,outlier_ejection ./client
//   I... lbkit_locality 0x55d0c2a4e0: picker: READY
//
// The variable is read once, at the first trace point. Off (the default), a
// trace point costs one load and a branch; none sits on the pick path.

#ifndef LBKIT_POLICIES_COMMON_TRACE_H_
#define LBKIT_POLICIES_COMMON_TRACE_H_

#include "absl/base/attributes.h"
#include "absl/strings/string_view.h"

namespace lbkit::policies {

// Whether $LBKIT_TRACE names `policy` (or is "all" / "1").
bool TraceEnabled(absl::string_view policy);

// Reads $LBKIT_TRACE again (tests; normally it is read once).
void ReloadTraceSettingsForTesting();

// Logs "<policy> <instance>: <printf text>".
void TraceLog(absl::string_view policy, const void* instance, const char* format, ...)
    ABSL_PRINTF_ATTRIBUTE(3, 4);

}  // namespace lbkit::policies

#define LBKIT_TRACE(policy, instance, ...)                           \
  do {                                                               \
    if (::lbkit::policies::TraceEnabled(policy)) {                   \
      ::lbkit::policies::TraceLog(policy, instance, __VA_ARGS__);    \
    }                                                                \
  } while (0)

#endif  // LBKIT_POLICIES_COMMON_TRACE_H_
