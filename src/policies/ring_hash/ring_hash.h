// lbkit_ring_hash: consistent hashing on a request header over a ring built
// as Envoy and gRPC build theirs (src/algorithms/ring_hash.h).
//
//   {"loadBalancingConfig": [{"lbkit_ring_hash": {
//       "requestHashHeader": "x-user-id",
//       "minRingSize": 1024, "maxRingSize": 4096}}]}

#ifndef LBKIT_POLICIES_RING_HASH_RING_HASH_H_
#define LBKIT_POLICIES_RING_HASH_RING_HASH_H_

#include "absl/strings/string_view.h"

namespace lbkit::policies {

inline constexpr absl::string_view kRingHashPolicyName = "lbkit_ring_hash";

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_RING_HASH_RING_HASH_H_
