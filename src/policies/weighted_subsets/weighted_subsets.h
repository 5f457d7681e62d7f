// lbkit_weighted_subsets: Istio's DestinationRule subsets with a
// VirtualService weighted route, in process. Endpoints join the subsets whose
// labels they carry; each call goes to a subset in proportion to the weights
// (smooth weighted round robin: exact shares over every cycle of the
// weights' sum) and is balanced within it by the subset's child policy.
//
//   {"loadBalancingConfig": [{"lbkit_weighted_subsets": {"subsets": [
//      {"name": "v1", "labels": {"version": "v1"}, "weight": 90},
//      {"name": "v2", "labels": {"version": "v2"}, "weight": 10,
//       "childPolicy": [{"lbkit_least_request": {}}]}]}}]}

#ifndef LBKIT_POLICIES_WEIGHTED_SUBSETS_WEIGHTED_SUBSETS_H_
#define LBKIT_POLICIES_WEIGHTED_SUBSETS_WEIGHTED_SUBSETS_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kWeightedSubsetsPolicyName = "lbkit_weighted_subsets";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_WEIGHTED_SUBSETS_WEIGHTED_SUBSETS_H_
