// lbkit-k8s: a Kubernetes Service's pods, from the API server, with their
// zones and labels (docs/kubernetes.md).
//
//   lbkit-k8s:///greeter.default:grpc
//
// Every channel to one Service shares one ServiceWatch (service_watch.h).
// Each report carries the ready endpoints of the target's port, with
// locality (zone, and the node's region) and the pod's labels, and the
// client's own locality as the channel argument lbkit_locality reads.

#ifndef LBKIT_RESOLVERS_K8S_K8S_RESOLVER_H_
#define LBKIT_RESOLVERS_K8S_K8S_RESOLVER_H_

#include <string>

#include "resolvers/k8s/k8s_target.h"

namespace lbkit::resolvers::k8s {

// The live watches as JSON (DumpState()'s "k8s") and Prometheus text.
std::string WatchesJson();
std::string WatchesPrometheus();
// What each ?istio=true channel made of the cluster's rules (DumpState()'s
// "istio"): the rules that apply, whether their config is the channel's,
// the newest translation error, the warnings.
std::string IstioJson();

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_K8S_RESOLVER_H_
