// lbkit_routes: a VirtualService's http routes in process. Each call takes
// the first route whose match it satisfies (its method path, its request
// headers), may fail there by fault injection, and goes to one of the
// route's subsets in proportion to the weights; each subset is balanced by
// its own child policy, its connections shared by every route using it.
//
//   {"loadBalancingConfig": [{"lbkit_routes": {
//      "subsets": [{"name": "v1", "labels": {"version": "v1"}},
//                  {"name": "v2", "labels": {"version": "v2"}}],
//      "routes": [
//        {"name": "jason", "match": [{"headers": {"end-user": {"exact": "jason"}}}],
//         "split": [{"subset": "v2", "weight": 100}]},
//        {"split": [{"subset": "v1", "weight": 100}]}]}}]}

#ifndef LBKIT_POLICIES_ROUTES_ROUTES_H_
#define LBKIT_POLICIES_ROUTES_ROUTES_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kRoutesPolicyName = "lbkit_routes";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_ROUTES_ROUTES_H_
