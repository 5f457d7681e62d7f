// What a resolver knows about an endpoint beyond its address (locality,
// weight, labels): plain values, with no gRPC in them, so a resolver's
// parsing (lbkit-file, lbkit-etcd, lbkit-k8s) can be built and tested on
// its own. common/server_address_attributes.h carries them to the policies
// on a gRPC ServerAddress.
//
//   EndpointAttributes attrs;
//   attrs.locality = {"us-west1", "us-west1-a", ""};
//   attrs.weight = 3;
//   attrs.labels["version"] = "v2";

#ifndef LBKIT_COMMON_ENDPOINT_ATTRIBUTES_H_
#define LBKIT_COMMON_ENDPOINT_ATTRIBUTES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace lbkit::internal {

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

}  // namespace lbkit::internal

#endif  // LBKIT_COMMON_ENDPOINT_ATTRIBUTES_H_
