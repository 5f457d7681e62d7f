// Getting onto a gRPC WorkSerializer from a thread gRPC does not own (lbkit's
// AsyncQueue thread, an EventEngine timer), where the ExecCtx gRPC expects is
// missing.

#ifndef LBKIT_COMMON_WORK_SERIALIZER_HOP_H_
#define LBKIT_COMMON_WORK_SERIALIZER_HOP_H_

#include <chrono>
#include <functional>
#include <memory>

#include <grpc/event_engine/event_engine.h>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/gprpp/work_serializer.h"

namespace lbkit::internal {

// Runs `fn` on `serializer` from any thread, through an ExecCtx closure
// (creating the ExecCtx when the thread has none).
void RunOnWorkSerializer(const std::shared_ptr<grpc_core::WorkSerializer>& serializer,
                         std::function<void()> fn);

// Runs `fn` on `serializer` once `delay` has passed on `engine`; cancel
// with engine->Cancel(handle). The timer's thread has no ExecCtx: the hop
// makes one, and `fn` (with what it captures) is dropped inside it.
grpc_event_engine::experimental::EventEngine::TaskHandle RunAfterOnWorkSerializer(
    grpc_event_engine::experimental::EventEngine* engine, std::chrono::milliseconds delay,
    std::shared_ptr<grpc_core::WorkSerializer> serializer, std::function<void()> fn);

}  // namespace lbkit::internal

#endif  // LBKIT_COMMON_WORK_SERIALIZER_HOP_H_
