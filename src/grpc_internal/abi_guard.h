// Include this before any gRPC internal header (src/core/...).
//
// lbkit derives from classes that libgrpc.so.29 does not promise to keep
// stable: their layout is fixed only by the exact version and build flags of
// Debian's package. Debian built gRPC without NDEBUG, and NDEBUG shrinks
// RefCount (16 -> 8 bytes) and so LoadBalancingPolicy (72 -> 64): objects
// built with it crash inside gRPC. This header stops such a build at compile
// time instead (docs/grpc-internals.md, "Foundations").
//
// The builds lbkit knows, each checked on its release (docs/platforms.md):
//   Debian 12: gRPC 1.51.1 with Abseil LTS 20220623
//   Debian 13: gRPC 1.51.1 with Abseil LTS 20240722
// Any other pair fails here and names what it found. To try lbkit on another
// build, add it to the list only after the suite passes there.

#ifndef LBKIT_GRPC_INTERNAL_ABI_GUARD_H_
#define LBKIT_GRPC_INTERNAL_ABI_GUARD_H_

#ifdef NDEBUG
#error "lbkit must not be compiled with NDEBUG: Debian's libgrpc was built without it, and gRPC's internal class layouts differ under NDEBUG. Remove -DNDEBUG (lbkit's CMake strips it from CMAKE_CXX_FLAGS_*)."
#endif

#include <grpc/support/port_platform.h>
#include <grpcpp/version_info.h>

#include "absl/base/config.h"

#include "src/core/ext/filters/client_channel/lb_policy/child_policy_handler.h"
#include "src/core/lib/load_balancing/lb_policy.h"

#define LBKIT_ABI_STR2(x) #x
#define LBKIT_ABI_STR(x) LBKIT_ABI_STR2(x)

// A test compiles this header with a made-up Abseil release to see the
// message a user on an unknown build gets (tests/grpc_internal).
#ifdef LBKIT_ABI_GUARD_PRETEND_ABSL
#define LBKIT_ABI_ABSL LBKIT_ABI_GUARD_PRETEND_ABSL
#else
#define LBKIT_ABI_ABSL ABSL_LTS_RELEASE_VERSION
#endif

#define LBKIT_ABI_FOUND                                   \
  "found gRPC " GRPC_CPP_VERSION_STRING " with Abseil LTS " \
  LBKIT_ABI_STR(LBKIT_ABI_ABSL)

static_assert(GRPC_CPP_VERSION_MAJOR == 1 && GRPC_CPP_VERSION_MINOR == 51 &&
                  GRPC_CPP_VERSION_PATCH == 1 &&
                  (LBKIT_ABI_ABSL == 20220623 || LBKIT_ABI_ABSL == 20240722),
              "lbkit is built against gRPC's internal classes and knows only "
              "gRPC 1.51.1 with Abseil LTS 20220623 (Debian 12) or 20240722 "
              "(Debian 13); " LBKIT_ABI_FOUND);
static_assert(sizeof(grpc_core::LoadBalancingPolicy) == 72,
              "grpc_core::LoadBalancingPolicy does not have the layout of "
              "Debian's libgrpc 1.51.1 (wrong headers or NDEBUG); " LBKIT_ABI_FOUND);
static_assert(sizeof(grpc_core::ChildPolicyHandler) == 112,
              "grpc_core::ChildPolicyHandler does not have the layout of "
              "Debian's libgrpc 1.51.1 (wrong headers or NDEBUG); " LBKIT_ABI_FOUND);

#undef LBKIT_ABI_FOUND
#undef LBKIT_ABI_ABSL
#undef LBKIT_ABI_STR
#undef LBKIT_ABI_STR2

#endif  // LBKIT_GRPC_INTERNAL_ABI_GUARD_H_
