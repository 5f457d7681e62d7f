// The parts of Kubernetes objects lbkit-k8s reads (Service, EndpointSlice,
// Pod, Node), parsed from the API server's JSON, and the rule that turns
// them into a channel's endpoints. Pure functions: no I/O, no gRPC.
//
//   auto service = ParseService(json);           // selector and ports
//   auto slice = ParseEndpointSlice(json);       // endpoints with conditions
//   auto picked = SelectEndpoints(state, target);
//
// The rules (which port, which endpoints, which locality and labels) are in
// docs/kubernetes.md, "How endpoints are chosen".

#ifndef LBKIT_RESOLVERS_K8S_KUBE_OBJECTS_H_
#define LBKIT_RESOLVERS_K8S_KUBE_OBJECTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "common/endpoint_attributes.h"
#include "resolvers/common/endpoint_spec.h"
#include "resolvers/k8s/k8s_target.h"

namespace lbkit::resolvers::k8s {

// The well-known node labels (kubernetes.io/docs/reference/labels-annotations-taints).
inline constexpr char kRegionLabel[] = "topology.kubernetes.io/region";
inline constexpr char kZoneLabel[] = "topology.kubernetes.io/zone";
inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";

struct ServicePort {
  std::string name;  // "" for a Service's only, unnamed port
  int port = 0;
  std::string protocol = "TCP";
};

struct ServiceInfo {
  std::string name;
  std::string type;  // ClusterIP, NodePort, LoadBalancer, ExternalName
  std::map<std::string, std::string> selector;
  std::vector<ServicePort> ports;
};

struct SliceEndpoint {
  std::vector<std::string> addresses;
  // conditions: an absent `ready` or `serving` reads as true, an absent
  // `terminating` as false, as the API reference says.
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string zone;
  std::string node_name;
  std::string pod_name;  // targetRef of kind Pod
};

struct SliceInfo {
  std::string name;
  std::string address_type;  // IPv4, IPv6, FQDN
  std::vector<ServicePort> ports;
  std::vector<SliceEndpoint> endpoints;
};

struct NodeInfo {
  std::string region;
  std::string zone;
};

using Labels = std::map<std::string, std::string>;

// Each returns what is wrong, naming the field, when the object does not
// have the shape the API reference gives.
absl::StatusOr<ServiceInfo> ParseService(const nlohmann::json& object);
absl::StatusOr<SliceInfo> ParseEndpointSlice(const nlohmann::json& object);
absl::StatusOr<Labels> ParsePodLabels(const nlohmann::json& object);
absl::StatusOr<NodeInfo> ParseNode(const nlohmann::json& object);

// `object[key]` when `object` is an object holding a non-null `key`, else
// null: the API's optional fields are read without exceptions.
const nlohmann::json* JsonMember(const nlohmann::json& object, const char* key);
// That member when it is a string, else "".
std::string JsonStringMember(const nlohmann::json& object, const char* key);

// metadata.name / metadata.resourceVersion, "" when absent.
std::string ObjectName(const nlohmann::json& object);
std::string ObjectResourceVersion(const nlohmann::json& object);

// A Status object's message and code (kind: Status), if `object` is one.
struct ApiStatus {
  int code = 0;
  std::string reason;
  std::string message;
};
std::optional<ApiStatus> ParseStatus(const nlohmann::json& object);

// What the watch knows about one Service.
struct ServiceState {
  std::optional<ServiceInfo> service;
  std::map<std::string, SliceInfo> slices;  // by slice name
  std::map<std::string, Labels> pods;       // by pod name
  std::map<std::string, NodeInfo> nodes;    // by node name, when readable
};

struct SelectedEndpoints {
  std::vector<EndpointSpec> endpoints;  // sorted by address
  int service_port = 0;  // the Service port the target names (its `port`)
  std::string address_family;  // "IPv4", or "IPv6" when no IPv4 slice has endpoints
  std::map<std::string, int> per_slice;  // endpoints each slice contributed
  // True when no endpoint was ready and the serving, terminating ones were
  // taken instead (kube-proxy's fallback).
  bool terminating_fallback = false;
  int not_ready = 0;  // endpoints left out
};

// The endpoints of `target`'s Service port: the slice port with the Service
// port's name, the (first) address of each ready endpoint once, with its zone (and
// the node's region) as locality and its pod's labels.
absl::StatusOr<SelectedEndpoints> SelectEndpoints(const ServiceState& state,
                                                  const K8sTarget& target);

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_KUBE_OBJECTS_H_
