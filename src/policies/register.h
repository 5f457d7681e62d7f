// Registration hooks of every lbkit policy, called from lbkit::RegisterAll()
// inside gRPC's CoreConfiguration builder. Adding a policy means adding its
// function here, its name to kPolicyNames and its call to RegisterPolicies().

#ifndef LBKIT_POLICIES_REGISTER_H_
#define LBKIT_POLICIES_REGISTER_H_

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/config/core_configuration.h"

namespace lbkit::policies {

void RegisterRoundRobin(grpc_core::CoreConfiguration::Builder* builder);

// Registers every policy above.
inline void RegisterPolicies(grpc_core::CoreConfiguration::Builder* builder) {
  RegisterRoundRobin(builder);
}

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_REGISTER_H_
