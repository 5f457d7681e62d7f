// The target of lbkit-k8s, and which namespace "own namespace" means.
//
//   lbkit-k8s:///greeter.default:grpc          Service greeter in default, port "grpc"
//   lbkit-k8s:///greeter.default.svc.cluster.local:50051
//   lbkit-k8s:///greeter:50051                  the client pod's own namespace
//   lbkit-k8s:///greeter.default:grpc?istio=true  and the cluster's Istio rules
//
// PORT is a Service port's number (`port`, not `targetPort`) or its name.
// docs/kubernetes.md documents the syntax and every error.

#ifndef LBKIT_RESOLVERS_K8S_K8S_TARGET_H_
#define LBKIT_RESOLVERS_K8S_K8S_TARGET_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit::resolvers::k8s {

inline constexpr absl::string_view kK8sScheme = "lbkit-k8s";

struct K8sTarget {
  std::string service;
  std::string namespace_name;  // "" until resolved: the client's own namespace
  std::string port_name;       // set when PORT is a name
  uint16_t port_number = 0;    // set when PORT is a number
  // ?istio=true: the cluster's DestinationRules and VirtualServices for
  // this Service become the channel's service config.
  bool istio = false;
  std::string PortText() const;
};

// The URI's authority, path and query parameters. Errors say what the target
// should look like and which part is wrong.
absl::StatusOr<K8sTarget> ParseK8sTarget(absl::string_view authority, absl::string_view path,
                                         const std::map<absl::string_view, absl::string_view>& query);

// Kubernetes' name rules: a DNS-1035 label for a Service, a DNS-1123 label
// for a namespace. "" when valid, else why not.
std::string CheckServiceName(absl::string_view name);
std::string CheckNamespaceName(absl::string_view name);

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_K8S_TARGET_H_
