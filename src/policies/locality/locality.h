// lbkit_locality: Istio's localityLbSetting in process. Endpoints are grouped
// by locality (from lbkit-file / lbkit-static attributes) into priority
// levels by proximity to the client (or by Istio's `failoverPriority`
// labels, or with `distribute` weights), each locality balanced by its own
// child policy; traffic spills from a level to the next in proportion to its
// missing health, as Envoy's priority load with overprovisioning and panic.
//
//   {"loadBalancingConfig": [{"lbkit_locality": {
//      "locality": "us-east/us-east-1a",
//      "failover": [{"from": "us-east", "to": "us-west"}],
//      "childPolicy": [{"lbkit_least_request": {}}]}}]}
//
// The arithmetic is in src/algorithms/locality.h; README "lbkit_locality"
// documents every field and where lbkit differs from Envoy and Istio.

#ifndef LBKIT_POLICIES_LOCALITY_LOCALITY_H_
#define LBKIT_POLICIES_LOCALITY_LOCALITY_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kLocalityPolicyName = "lbkit_locality";

// The environment variable naming the client's locality when the config
// has no `locality`.
inline constexpr char kLocalityEnvironmentVariable[] = "LBKIT_LOCALITY";

// The channel argument a resolver that knows the client's locality sets
// (lbkit-k8s: the client pod's node's region/zone), "region/zone/subZone".
// The config's `locality` and $LBKIT_LOCALITY take precedence over it.
inline constexpr char kClientLocalityChannelArg[] = "lbkit.client_locality";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_LOCALITY_LOCALITY_H_
