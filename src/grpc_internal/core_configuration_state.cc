#include "grpc_internal/core_configuration_state.h"

#include <atomic>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/config/core_configuration.h"

// grpc_core::CoreConfiguration::config_ is a private static data member, but
// libgrpc.so.29 exports it (nm -D shows "B
// _ZN9grpc_core17CoreConfiguration7config_E"). Binding a declaration of the
// same type to that symbol name reads it without touching the class's access
// control. The type is std::atomic<CoreConfiguration*> in 1.51.1; the build
// pins that version (cmake/GrpcInternal.cmake), and the static_assert below
// guards the assumption about its size.
extern std::atomic<grpc_core::CoreConfiguration*> lbkit_grpc_core_config_
    __asm__("_ZN9grpc_core17CoreConfiguration7config_E");

static_assert(sizeof(std::atomic<grpc_core::CoreConfiguration*>) ==
                  sizeof(void*),
              "unexpected layout of CoreConfiguration::config_");

namespace lbkit::grpc_internal {

bool CoreConfigurationBuilt() {
  return lbkit_grpc_core_config_.load(std::memory_order_acquire) != nullptr;
}

}  // namespace lbkit::grpc_internal
