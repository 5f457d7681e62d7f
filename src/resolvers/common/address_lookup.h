// lbkit's endpoint specs (resolvers/common/endpoint_spec.h) as gRPC
// addresses: each host looked up (IP literals directly, names with the
// system resolver) and the spec's attributes attached.
//
//   auto specs = ParseEndpointList("127.0.0.1:50051;weight=3,[::1]:50052");
//   auto addresses = ToServerAddresses(*specs);  // may block on DNS

#ifndef LBKIT_RESOLVERS_COMMON_ADDRESS_LOOKUP_H_
#define LBKIT_RESOLVERS_COMMON_ADDRESS_LOOKUP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/common/endpoint_spec.h"
#include "src/core/lib/iomgr/resolved_address.h"
#include "src/core/lib/resolver/server_address.h"

namespace lbkit::resolvers {

// Resolves each spec's host (IP literals directly, names with the system
// resolver, every address of a name) and attaches its attributes. A name
// lookup blocks: resolvers call this off the WorkSerializer
// (common/detached_work.h).
absl::StatusOr<grpc_core::ServerAddressList> ToServerAddresses(
    const std::vector<EndpointSpec>& specs);

// The addresses of `host` with `port`: an IP literal directly, a name
// through the system resolver (blocking) or the test's lookup.
absl::StatusOr<std::vector<grpc_resolved_address>> LookupHost(const std::string& host,
                                                               uint16_t port);

// Test seam: replaces the system resolver for names (not IP literals) in
// ToServerAddresses; nullptr restores getaddrinfo. Returns the addresses of
// `host` with `port` set, or an error.
using HostLookup = std::function<absl::StatusOr<std::vector<grpc_resolved_address>>(
    const std::string& host, uint16_t port)>;
void SetHostLookupForTesting(HostLookup lookup);

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_COMMON_ADDRESS_LOOKUP_H_
