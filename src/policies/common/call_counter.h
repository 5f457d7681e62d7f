// The call tracker a leaf policy's picker attaches to every call it
// completes, so stats::EndpointStats counts the pick, the call in flight,
// its status code and its duration (lbkit::DumpState(), PrometheusText()).
// It lives here, not in stats/, because it is a gRPC call tracker: stats/
// stays free of gRPC's internal headers.
//
//   return PickResult::Complete(subchannel, CountCall(endpoint_stats, std::move(tracker)));

#ifndef LBKIT_POLICIES_COMMON_CALL_COUNTER_H_
#define LBKIT_POLICIES_COMMON_CALL_COUNTER_H_

#include <memory>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "stats/stats.h"

namespace lbkit::policies {

// A call tracker counting one call on `endpoint` (it keeps a reference: the
// endpoint may leave the policy while the call runs), forwarding to `inner`
// when a policy has its own tracker. Allocated from a per-thread pool (no
// allocation in steady state). With counting off (stats::Enabled()), `inner`
// itself.
std::unique_ptr<grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface> CountCall(
    const std::shared_ptr<stats::EndpointStats>& endpoint,
    std::unique_ptr<grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface> inner);

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_CALL_COUNTER_H_
