// lbkit_maglev: consistent hashing on a request header over a Maglev table
// (src/algorithms/maglev.h), as Envoy's maglev load balancer.
//
//   {"loadBalancingConfig": [{"lbkit_maglev": {
//       "requestHashHeader": "x-user-id", "tableSize": 65537}}]}

#ifndef LBKIT_POLICIES_MAGLEV_MAGLEV_H_
#define LBKIT_POLICIES_MAGLEV_MAGLEV_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kMaglevPolicyName = "lbkit_maglev";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_MAGLEV_MAGLEV_H_
