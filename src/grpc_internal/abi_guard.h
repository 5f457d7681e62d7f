// Include this before any gRPC internal header (src/core/...).
//
// lbkit derives from classes that libgrpc.so.29 does not promise to keep
// stable: their layout is fixed only by the exact version and build flags of
// Debian's package. Debian built gRPC without NDEBUG, and NDEBUG shrinks
// RefCount (16 -> 8 bytes) and so LoadBalancingPolicy (72 -> 64): objects
// built with it crash inside gRPC. This header stops such a build at compile
// time instead (docs/grpc-internals.md, "Foundations").

#ifndef LBKIT_GRPC_INTERNAL_ABI_GUARD_H_
#define LBKIT_GRPC_INTERNAL_ABI_GUARD_H_

#ifdef NDEBUG
#error "lbkit must not be compiled with NDEBUG: Debian's libgrpc was built without it, and gRPC's internal class layouts differ under NDEBUG. Remove -DNDEBUG (lbkit's CMake strips it from CMAKE_CXX_FLAGS_*)."
#endif

#include <grpc/support/port_platform.h>

#include "src/core/ext/filters/client_channel/lb_policy/child_policy_handler.h"
#include "src/core/lib/load_balancing/lb_policy.h"

static_assert(sizeof(grpc_core::LoadBalancingPolicy) == 72,
              "grpc_core::LoadBalancingPolicy does not have the layout of "
              "Debian's libgrpc 1.51.1: wrong headers or NDEBUG");
static_assert(sizeof(grpc_core::ChildPolicyHandler) == 112,
              "grpc_core::ChildPolicyHandler does not have the layout of "
              "Debian's libgrpc 1.51.1: wrong headers or NDEBUG");

#endif  // LBKIT_GRPC_INTERNAL_ABI_GUARD_H_
