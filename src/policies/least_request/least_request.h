// lbkit_least_request: power of d choices over in-flight requests, with an
// optional peak-EWMA latency cost.
//
// Service config:
//   {"loadBalancingConfig": [{"lbkit_least_request": {
//       "choiceCount": 2,            // 2..10; above 10 is clamped (gRFC A48)
//       "activeRequestBias": 1.0,    // >= 0 (Envoy); used with unequal weights
//       "peakEwma": {"decay": "10s", "defaultRtt": "0.030s"}   // optional
//   }}]}

#ifndef LBKIT_POLICIES_LEAST_REQUEST_LEAST_REQUEST_H_
#define LBKIT_POLICIES_LEAST_REQUEST_LEAST_REQUEST_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kLeastRequestPolicyName =
    "lbkit_least_request";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_LEAST_REQUEST_LEAST_REQUEST_H_
