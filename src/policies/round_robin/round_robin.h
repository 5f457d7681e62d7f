// lbkit_round_robin: per-request rotation over the READY endpoints.
//
// Service config:
//   {"loadBalancingConfig": [{"lbkit_round_robin": {}}]}
// The config object takes no fields yet; unknown fields are ignored (as
// gRPC does), and a config that is not a JSON object is rejected.

#ifndef LBKIT_POLICIES_ROUND_ROBIN_ROUND_ROBIN_H_
#define LBKIT_POLICIES_ROUND_ROBIN_ROUND_ROBIN_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kRoundRobinPolicyName = "lbkit_round_robin";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_ROUND_ROBIN_ROUND_ROBIN_H_
