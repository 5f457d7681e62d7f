// Endpoints as lbkit's resolvers describe them (an address plus locality,
// weight and labels), their text form in lbkit-static URIs, and their
// conversion to gRPC addresses.
//
//   auto specs = ParseEndpointList(
//       "127.0.0.1:50051;locality=us-west1/us-west1-a;weight=3;label.version=v1,"
//       "[::1]:50052");
//   auto addresses = ToServerAddresses(*specs);

#ifndef LBKIT_RESOLVERS_COMMON_ENDPOINT_SPEC_H_
#define LBKIT_RESOLVERS_COMMON_ENDPOINT_SPEC_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/endpoint_attributes.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/resolver/server_address.h"

namespace lbkit::resolvers {

struct EndpointSpec {
  std::string address;  // "host:port" as written: IPv4, [IPv6]:port or a name
  EndpointAttributes attributes;
};

// Splits "host:port" / "[v6]:port"; the port must be in [1, 65535].
// Errors name the problem, e.g. `port "x" is not a number in [1, 65535]`.
absl::Status SplitHostPort(absl::string_view host_port, std::string* host,
                           uint16_t* port);

// "region/zone/subZone" with trailing parts optional ("us-west1",
// "us-west1/us-west1-a").
absl::StatusOr<Locality> ParseLocality(absl::string_view text);

// One lbkit-static endpoint: ADDRESS[;locality=R/Z/S][;weight=N][;label.K=V]...
absl::StatusOr<EndpointSpec> ParseEndpoint(absl::string_view text);

// Comma-separated endpoints. Errors name the endpoint by position and text:
//   endpoint 2 ("127.0.0.1:5;weight=0"): weight must be an integer in
//   [1, 2147483647], got "0"
// A duplicate address is an error too: one address, one endpoint.
absl::StatusOr<std::vector<EndpointSpec>> ParseEndpointList(
    absl::string_view list);

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

// Whether any spec names its host by name rather than by IP literal: its
// addresses can change without the spec changing, so a resolver must look
// it up again on every refresh.
bool HasHostNames(const std::vector<EndpointSpec>& specs);

// Test seam: replaces the system resolver for names (not IP literals) in
// ToServerAddresses; nullptr restores getaddrinfo. Returns the addresses of
// `host` with `port` set, or an error.
using HostLookup = std::function<absl::StatusOr<std::vector<grpc_resolved_address>>(
    const std::string& host, uint16_t port)>;
void SetHostLookupForTesting(HostLookup lookup);

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_COMMON_ENDPOINT_SPEC_H_
