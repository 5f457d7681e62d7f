// Registration hooks of every lbkit policy, called from lbkit::RegisterAll()
// inside gRPC's CoreConfiguration builder. Adding a policy means declaring its
// function here and adding it to kPolicies.

#ifndef LBKIT_POLICIES_REGISTER_H_
#define LBKIT_POLICIES_REGISTER_H_

#include "absl/strings/string_view.h"
#include "grpc_internal/abi_guard.h"
#include "policies/circuit_breaker/circuit_breaker.h"
#include "policies/least_request/least_request.h"
#include "policies/locality/locality.h"
#include "policies/maglev/maglev.h"
#include "policies/outlier_ejection/outlier_ejection.h"
#include "policies/ring_hash/ring_hash.h"
#include "policies/round_robin/round_robin.h"
#include "policies/routes/routes.h"
#include "policies/weighted_subsets/weighted_subsets.h"
#include "src/core/lib/config/core_configuration.h"

namespace lbkit::policies {

void RegisterRoundRobin(grpc_core::CoreConfiguration::Builder* builder);
void RegisterLeastRequest(grpc_core::CoreConfiguration::Builder* builder);
void RegisterRingHash(grpc_core::CoreConfiguration::Builder* builder);
void RegisterMaglev(grpc_core::CoreConfiguration::Builder* builder);
void RegisterLocality(grpc_core::CoreConfiguration::Builder* builder);
void RegisterOutlierEjection(grpc_core::CoreConfiguration::Builder* builder);
void RegisterCircuitBreaker(grpc_core::CoreConfiguration::Builder* builder);
void RegisterWeightedSubsets(grpc_core::CoreConfiguration::Builder* builder);
void RegisterRoutes(grpc_core::CoreConfiguration::Builder* builder);

struct PolicyEntry {
  absl::string_view name;
  void (*register_policy)(grpc_core::CoreConfiguration::Builder*);
};

// Every lbkit policy, in the order the README documents them.
inline constexpr PolicyEntry kPolicies[] = {
    {kRoundRobinPolicyName, RegisterRoundRobin},
    {kLeastRequestPolicyName, RegisterLeastRequest},
    {kRingHashPolicyName, RegisterRingHash},
    {kMaglevPolicyName, RegisterMaglev},
    {kLocalityPolicyName, RegisterLocality},
    {kOutlierEjectionPolicyName, RegisterOutlierEjection},
    {kWeightedSubsetsPolicyName, RegisterWeightedSubsets},
    {kRoutesPolicyName, RegisterRoutes},
    {kCircuitBreakerPolicyName, RegisterCircuitBreaker},
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_REGISTER_H_
