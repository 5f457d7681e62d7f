// lbkit_outlier_ejection: passive health for any lbkit (or gRPC) policy, as
// Istio's outlierDetection and gRPC's outlier_detection (gRFC A50). It wraps
// a child policy, watches every call's status, and ejects an endpoint (the
// child sees it as TRANSIENT_FAILURE, so it gets no picks) on a run of
// consecutive errors at once, or at an interval tick on its success rate or
// failure percentage, for baseEjectionTime x the times it has been ejected.
//
//   {"loadBalancingConfig": [{"lbkit_outlier_ejection": {
//      "consecutive5xxErrors": 5, "interval": "10s", "baseEjectionTime": "30s",
//      "maxEjectionPercent": 10,
//      "childPolicy": [{"lbkit_least_request": {}}]}}]}
//
// The decisions are in src/algorithms/outlier_ejection.h; README
// "lbkit_outlier_ejection" documents every field.

#ifndef LBKIT_POLICIES_OUTLIER_EJECTION_OUTLIER_EJECTION_H_
#define LBKIT_POLICIES_OUTLIER_EJECTION_OUTLIER_EJECTION_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kOutlierEjectionPolicyName = "lbkit_outlier_ejection";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_OUTLIER_EJECTION_OUTLIER_EJECTION_H_
