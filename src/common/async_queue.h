// One grpc++ completion queue, and one thread draining it, for every
// asynchronous call lbkit makes from inside the process it balances: health
// checks (poll mode) and lbkit-etcd's list, watch and lease calls.
//
//   grpc::CompletionQueue* cq = internal::AsyncQueue();
//   reader->Finish(&reply, &status, internal::OnDone([=](bool ok) { ... }));
//
// Not grpc++'s callback API: its shared callback queue double-frees at
// process exit in 1.51 (docs/grpc-internals.md). The queue is never
// destroyed, so no exit-time teardown races with a call in flight; its
// thread blocks in Next() until the process ends. Callbacks run on that
// thread, one at a time: they must not block (hop to a WorkSerializer for
// gRPC-core work).

#ifndef LBKIT_COMMON_ASYNC_QUEUE_H_
#define LBKIT_COMMON_ASYNC_QUEUE_H_

#include <grpcpp/completion_queue.h>

#include <functional>

namespace lbkit::internal {

grpc::CompletionQueue* AsyncQueue();

// A tag for AsyncQueue(): `done(ok)` runs once when the operation completes
// (ok as grpc++ reports it), then the tag frees itself.
void* OnDone(std::function<void(bool ok)> done);

}  // namespace lbkit::internal

#endif  // LBKIT_COMMON_ASYNC_QUEUE_H_
