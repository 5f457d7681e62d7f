#include "common/work_serializer_hop.h"

#include "src/core/lib/iomgr/closure.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace lbkit {

void RunOnWorkSerializer(const std::shared_ptr<grpc_core::WorkSerializer>& serializer,
                         std::function<void()> fn) {
  auto hop = [serializer, fn = std::move(fn)](absl::Status) {
    serializer->Run(fn, DEBUG_LOCATION);
  };
  if (grpc_core::ExecCtx::Get() == nullptr) {
    grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    grpc_core::ExecCtx::Run(DEBUG_LOCATION, grpc_core::NewClosure(std::move(hop)),
                            absl::OkStatus());
  } else {
    grpc_core::ExecCtx::Run(DEBUG_LOCATION, grpc_core::NewClosure(std::move(hop)),
                            absl::OkStatus());
  }
}

}  // namespace lbkit
