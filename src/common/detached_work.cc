#include "common/detached_work.h"

#include <thread>
#include <type_traits>
#include <utility>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace lbkit::internal {

void RunDetached(std::function<void()> work) {
  std::thread([work = std::move(work)]() mutable {
    grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    work();
    work = nullptr;  // its captures go while the ExecCtx is still there
  }).detach();
}

}  // namespace lbkit::internal
