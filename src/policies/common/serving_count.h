// How many endpoints a picker can send a call to: what a parent policy
// (lbkit_locality, lbkit_weighted_subsets) needs to weigh a child, beyond
// the child's connectivity state.
//
// Counting the child's READY subchannels is not enough: a child can be
// connected to an endpoint it will not pick (a polled health check saying
// NOT_SERVING, an endpoint ejected by lbkit_outlier_ejection below the
// parent). A parent that counted it would keep sending that child its share
// of calls, which would queue until their deadline. So every lbkit picker
// that can pick says how many endpoints it picks from; a parent reads it
// through ServingEndpointsOf() on the control plane, never per call.
//
//   class MyPicker : public SubchannelPicker, public ServingCount {
//     std::optional<size_t> ServingEndpoints() const override { return ready_.size(); }
//   };
//
// A wrapper (outlier ejection, circuit breaker) passes its child's answer
// on, "unknown" included: a child of gRPC's own says nothing, and the parent
// then counts READY subchannels instead.

#ifndef LBKIT_POLICIES_COMMON_SERVING_COUNT_H_
#define LBKIT_POLICIES_COMMON_SERVING_COUNT_H_

#include <cstddef>
#include <optional>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/load_balancing/lb_policy.h"

namespace lbkit::policies {

class ServingCount {
 public:
  // Endpoints a call picked now may go to; nullopt when not known (a wrapper
  // over a picker that does not say).
  virtual std::optional<size_t> ServingEndpoints() const = 0;

 protected:
  ~ServingCount() = default;
};

// The picker's count if it is an lbkit picker that knows one; nullopt for
// any other (gRPC's own policies as children, and wrappers over them).
inline std::optional<size_t> ServingEndpointsOf(
    const grpc_core::LoadBalancingPolicy::SubchannelPicker* picker) {
  const auto* counted = dynamic_cast<const ServingCount*>(picker);
  if (counted == nullptr) return std::nullopt;
  return counted->ServingEndpoints();
}

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_SERVING_COUNT_H_
