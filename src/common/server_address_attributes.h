// lbkit's endpoint attributes (common/endpoint_attributes.h) on a gRPC
// ServerAddress: resolvers attach them with WithEndpointAttributes(); every
// policy reads them through GetEndpointAttributes() / EndpointWeight(), and
// nothing else, so the representation can change in one place.
//
//   ServerAddress address = WithEndpointAttributes(std::move(plain), attrs);
//   ...
//   uint32_t w = EndpointWeight(address);  // attrs.weight; 1 when no attributes

#ifndef LBKIT_COMMON_SERVER_ADDRESS_ATTRIBUTES_H_
#define LBKIT_COMMON_SERVER_ADDRESS_ATTRIBUTES_H_

#include <cstdint>

#include "common/endpoint_attributes.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/resolver/server_address.h"

namespace lbkit::internal {

// `address` with `attributes` attached. Also sets gRPC's own weight
// attribute, which gRPC's weight-aware policies read.
grpc_core::ServerAddress WithEndpointAttributes(
    const grpc_core::ServerAddress& address, EndpointAttributes attributes);

// The attributes a resolver attached, or null (e.g. dns:, ipv4:).
const EndpointAttributes* GetEndpointAttributes(
    const grpc_core::ServerAddress& address);

// The endpoint's weight: lbkit's attribute, else gRPC's weight attribute
// (xDS-style resolvers), else 1. Never 0.
uint32_t EndpointWeight(const grpc_core::ServerAddress& address);

}  // namespace lbkit::internal

#endif  // LBKIT_COMMON_SERVER_ADDRESS_ATTRIBUTES_H_
