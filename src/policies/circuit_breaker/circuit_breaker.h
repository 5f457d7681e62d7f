// lbkit_circuit_breaker: Istio's connectionPool limits in process. Wraps a
// child policy and admits a call only while fewer than maxConcurrentRequests
// calls are in flight across the channel (and, optionally, fewer than
// maxRequestsPerEndpoint on the endpoint the child picked); beyond that the
// call fails at once with RESOURCE_EXHAUSTED, even with wait_for_ready, as
// Envoy's overflow does.
//
//   {"loadBalancingConfig": [{"lbkit_circuit_breaker": {
//      "maxConcurrentRequests": 100, "maxRequestsPerEndpoint": 20,
//      "childPolicy": [{"lbkit_least_request": {}}]}}]}

#ifndef LBKIT_POLICIES_CIRCUIT_BREAKER_CIRCUIT_BREAKER_H_
#define LBKIT_POLICIES_CIRCUIT_BREAKER_CIRCUIT_BREAKER_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kCircuitBreakerPolicyName = "lbkit_circuit_breaker";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_CIRCUIT_BREAKER_CIRCUIT_BREAKER_H_
