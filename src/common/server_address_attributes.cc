#include "common/server_address_attributes.h"

#include <memory>
#include <string>
#include <utility>

namespace lbkit::internal {


namespace {

// The attribute key is compared by pointer (ServerAddress's attribute map is
// keyed by const char*), so it must be this one object.
const char kEndpointAttributesKey[] = "lbkit.endpoint_attributes";

class EndpointAttributesAttribute
    : public grpc_core::ServerAddress::AttributeInterface {
 public:
  explicit EndpointAttributesAttribute(EndpointAttributes value)
      : value_(std::move(value)) {}

  const EndpointAttributes& value() const { return value_; }

  std::unique_ptr<AttributeInterface> Copy() const override {
    return std::make_unique<EndpointAttributesAttribute>(value_);
  }
  // Equal attributes keep an endpoint (and its connection) across resolver
  // updates; a changed weight, locality or label makes it a new endpoint.
  int Cmp(const AttributeInterface* other) const override {
    const auto& o = static_cast<const EndpointAttributesAttribute*>(other)->value_;
    if (value_ == o) return 0;
    return value_.ToString() < o.ToString() ? -1 : 1;
  }
  std::string ToString() const override { return value_.ToString(); }

 private:
  EndpointAttributes value_;
};

}  // namespace

grpc_core::ServerAddress WithEndpointAttributes(
    const grpc_core::ServerAddress& address, EndpointAttributes attributes) {
  const uint32_t weight = attributes.weight;
  return address
      .WithAttribute(kEndpointAttributesKey,
                     std::make_unique<EndpointAttributesAttribute>(std::move(attributes)))
      .WithAttribute(
          grpc_core::ServerAddressWeightAttribute::kServerAddressWeightAttributeKey,
          std::make_unique<grpc_core::ServerAddressWeightAttribute>(weight));
}

const EndpointAttributes* GetEndpointAttributes(
    const grpc_core::ServerAddress& address) {
  const auto* attribute = static_cast<const EndpointAttributesAttribute*>(
      address.GetAttribute(kEndpointAttributesKey));
  return attribute == nullptr ? nullptr : &attribute->value();
}

uint32_t EndpointWeight(const grpc_core::ServerAddress& address) {
  if (const EndpointAttributes* attrs = GetEndpointAttributes(address)) {
    return attrs->weight == 0 ? 1 : attrs->weight;
  }
  const auto* grpc_weight = static_cast<const grpc_core::ServerAddressWeightAttribute*>(
      address.GetAttribute(
          grpc_core::ServerAddressWeightAttribute::kServerAddressWeightAttributeKey));
  if (grpc_weight == nullptr || grpc_weight->weight() == 0) return 1;
  return grpc_weight->weight();
}

}  // namespace lbkit::internal
