// lbkit: client-side, per-request load balancing for gRPC C++.
//
// lbkit adds load-balancing policies to gRPC's own client channel. Call
// lbkit::RegisterAll() once at the start of main(), before the first gRPC
// channel or server is created, then choose a policy in ordinary service
// config JSON:
//
//   #include <grpcpp/grpcpp.h>
//   #include "lbkit/lbkit.h"
//
//   int main() {
//     if (absl::Status s = lbkit::RegisterAll(); !s.ok()) {
//       std::cerr << s << "\n";
//       return 1;
//     }
//     grpc::ChannelArguments args;
//     args.SetServiceConfigJSON(
//         R"({"loadBalancingConfig": [{"lbkit_round_robin": {}}]})");
//     auto channel = grpc::CreateCustomChannel(
//         "ipv4:127.0.0.1:50051,127.0.0.1:50052",
//         grpc::InsecureChannelCredentials(), args);
//     // ... every RPC on `channel` is now balanced per request.
//   }
//
// Policy names all start with "lbkit_" and never collide with gRPC's
// built-in policies, which stay available.

#ifndef LBKIT_LBKIT_H_
#define LBKIT_LBKIT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace lbkit {

// Registers every lbkit policy and resolver with gRPC.
//
// Must run before gRPC builds its core configuration, which happens when the
// first channel or server is created. It is idempotent and thread-safe: the
// first call registers, later calls return the first call's result.
//
// Called too late (a channel or server already exists), it registers nothing
// and returns FAILED_PRECONDITION saying so, rather than letting gRPC abort
// the process. Channels that then name an lbkit policy fail their RPCs,
// because gRPC does not know the policy.
absl::Status RegisterAll();

// True once RegisterAll() has registered lbkit's policies successfully.
bool IsRegistered();

// The names of the load-balancing policies lbkit registers, e.g.
// "lbkit_round_robin", in the order they are documented.
std::vector<std::string> PolicyNames();

// The target URI schemes of lbkit's resolvers, e.g. "lbkit-static".
std::vector<std::string> ResolverSchemes();

// lbkit's version, "MAJOR.MINOR.PATCH": the library's, at run time, where
// LBKIT_VERSION_STRING (lbkit/version.h) is the one built against.
const char* Version();

}  // namespace lbkit

#endif  // LBKIT_LBKIT_H_
