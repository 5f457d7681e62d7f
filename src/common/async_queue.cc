#include "common/async_queue.h"

#include <thread>
#include <utility>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace lbkit::internal {

namespace {

using Done = std::function<void(bool)>;

class Queue {
 public:
  Queue() {
    std::thread([this] {
      void* tag;
      bool ok;
      while (cq_.Next(&tag, &ok)) {
        // A callback may drop the last reference to a gRPC-core object (a
        // resolver, a policy), whose destructor expects an ExecCtx.
        grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
        grpc_core::ExecCtx exec_ctx;
        auto* done = static_cast<Done*>(tag);
        (*done)(ok);
        delete done;
      }
    }).detach();
  }
  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  grpc::CompletionQueue cq_;
};

}  // namespace

grpc::CompletionQueue* AsyncQueue() {
  static Queue* queue = new Queue();  // never destroyed: see the header
  return queue->cq();
}

void* OnDone(std::function<void(bool ok)> done) { return new Done(std::move(done)); }

}  // namespace lbkit::internal
