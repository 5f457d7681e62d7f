// Blocking work (a name lookup, a file read) that must stay off gRPC's
// WorkSerializer, on a thread of its own.
//
//   RunDetached([resolver = Ref()]() {
//     auto addresses = ToServerAddresses(specs);   // may block on DNS
//     resolver->PostResult(std::move(addresses));  // hops to the serializer
//   });
//
// The thread is not one of gRPC's, so it has no ExecCtx: `work` runs inside
// one, and `work` itself (with every gRPC reference it captured) is
// destroyed inside it too. Dropping the last reference to a resolver or a
// policy destroys channel objects that need an ExecCtx (docs/grpc-internals.md,
// "Threads lbkit owns").

#ifndef LBKIT_COMMON_DETACHED_WORK_H_
#define LBKIT_COMMON_DETACHED_WORK_H_

#include <functional>

namespace lbkit::internal {

void RunDetached(std::function<void()> work);

}  // namespace lbkit::internal

#endif  // LBKIT_COMMON_DETACHED_WORK_H_
