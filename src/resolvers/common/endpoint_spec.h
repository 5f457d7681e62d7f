// Endpoints as lbkit's resolvers describe them (an address plus locality,
// weight and labels) and their text form in lbkit-static URIs. Plain values,
// no gRPC: resolvers/common/address_lookup.h turns them into gRPC addresses.
//
//   auto specs = ParseEndpointList(
//       "127.0.0.1:50051;locality=us-west1/us-west1-a;weight=3;label.version=v1,"
//       "[::1]:50052");

#ifndef LBKIT_RESOLVERS_COMMON_ENDPOINT_SPEC_H_
#define LBKIT_RESOLVERS_COMMON_ENDPOINT_SPEC_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/endpoint_attributes.h"

namespace lbkit::resolvers {

struct EndpointSpec {
  std::string address;  // "host:port" as written: IPv4, [IPv6]:port or a name
  internal::EndpointAttributes attributes;
};

// Splits "host:port" / "[v6]:port"; the port must be in [1, 65535].
// Errors name the problem, e.g. `port "x" is not a number in [1, 65535]`.
absl::Status SplitHostPort(absl::string_view host_port, std::string* host,
                           uint16_t* port);

// "region/zone/subZone" with trailing parts optional ("us-west1",
// "us-west1/us-west1-a").
absl::StatusOr<internal::Locality> ParseLocality(absl::string_view text);

// One lbkit-static endpoint: ADDRESS[;locality=R/Z/S][;weight=N][;label.K=V]...
absl::StatusOr<EndpointSpec> ParseEndpoint(absl::string_view text);

// Comma-separated endpoints. Errors name the endpoint by position and text:
//   endpoint 2 ("127.0.0.1:5;weight=0"): weight must be an integer in
//   [1, 2147483647], got "0"
// A duplicate address is an error too: one address, one endpoint.
absl::StatusOr<std::vector<EndpointSpec>> ParseEndpointList(
    absl::string_view list);

// Whether `host` is an IPv4 or IPv6 literal (no brackets).
bool IsIpLiteral(const std::string& host);

// Whether any spec names its host by name rather than by IP literal: its
// addresses can change without the spec changing, so a resolver must look
// it up again on every refresh.
bool HasHostNames(const std::vector<EndpointSpec>& specs);

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_COMMON_ENDPOINT_SPEC_H_
