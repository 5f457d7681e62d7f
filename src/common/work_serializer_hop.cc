#include "common/work_serializer_hop.h"

#include "src/core/lib/iomgr/closure.h"
#include "src/core/lib/iomgr/exec_ctx.h"

#include "absl/status/status.h"

#include <type_traits>
#include <utility>

namespace lbkit::internal {

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

grpc_event_engine::experimental::EventEngine::TaskHandle RunAfterOnWorkSerializer(
    grpc_event_engine::experimental::EventEngine* engine, std::chrono::milliseconds delay,
    std::shared_ptr<grpc_core::WorkSerializer> serializer, std::function<void()> fn) {
  return engine->RunAfter(delay, [serializer = std::move(serializer),
                                  fn = std::move(fn)]() mutable {
    grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    // Moved out: the engine destroys this closure after it returns, outside
    // the ExecCtx (docs/grpc-internals.md, "Threads lbkit owns").
    std::shared_ptr<grpc_core::WorkSerializer> hop = std::move(serializer);
    RunOnWorkSerializer(hop, std::move(fn));
    fn = nullptr;
  });
}

}  // namespace lbkit::internal
