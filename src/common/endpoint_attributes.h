// What a resolver knows about an endpoint beyond its address (locality,
// weight, labels), carried to the policies as a gRPC ServerAddress
// attribute. Resolvers attach it with WithEndpointAttributes(); every policy
// reads it through GetEndpointAttributes() / EndpointWeight(), and nothing
// else, so the representation can change in one place.
//
//   EndpointAttributes attrs;
//   attrs.locality = {"us-west1", "us-west1-a", ""};
//   attrs.weight = 3;
//   attrs.labels["version"] = "v2";
//   ServerAddress address = WithEndpointAttributes(std::move(plain), attrs);
//   ...
//   uint32_t w = EndpointWeight(address);  // 3; 1 when no attributes

#ifndef LBKIT_COMMON_ENDPOINT_ATTRIBUTES_H_
#define LBKIT_COMMON_ENDPOINT_ATTRIBUTES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/resolver/server_address.h"

namespace lbkit {

struct Locality {
  std::string region;
  std::string zone;
  std::string sub_zone;

  bool empty() const { return region.empty() && zone.empty() && sub_zone.empty(); }
  // "region/zone/subZone", Istio's notation.
  std::string ToString() const;
  bool operator==(const Locality& o) const {
    return region == o.region && zone == o.zone && sub_zone == o.sub_zone;
  }
};

struct EndpointAttributes {
  static constexpr uint32_t kMaxWeight = 2147483647;  // 2^31 - 1

  Locality locality;
  uint32_t weight = 1;  // 1..kMaxWeight
  std::map<std::string, std::string> labels;

  bool operator==(const EndpointAttributes& o) const {
    return locality == o.locality && weight == o.weight && labels == o.labels;
  }
  std::string ToString() const;
};

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

}  // namespace lbkit

#endif  // LBKIT_COMMON_ENDPOINT_ATTRIBUTES_H_
