// Istio DestinationRule / VirtualService YAML to the gRPC service config that
// does the same with lbkit's policies: what the `lbkit-istio` tool prints.
// Part of lbkit (the target lbkit::istio names it too); lbkit-k8s uses it
// to apply the cluster's rules live (`lbkit-k8s:///svc.ns:port?istio=true`).
//
//   auto t = lbkit::TranslateIstio(yaml_text);
//   if (!t.ok()) { std::cerr << t.status() << "\n"; return 2; }
//   for (const auto& w : t->warnings) std::cerr << "warning: " << w << "\n";
//   t->ApplyTo(&args);  // the service config and the channel arguments
//
// Carried over as a sidecar applies them, Istio's defaults for absent
// fields included (no rule still means least request and 2 retries):
// loadBalancer (simple, consistentHash, localityLbSetting),
// outlierDetection, connectionPool.http.http2MaxRequests, subsets with their
// trafficPolicy, and from a VirtualService that applies to the mesh its
// weighted routes, timeout and retries. Everything else is named in a
// warning with the reason; README "Coming from Istio" has the table and
// docs/istio.md the semantics.

#ifndef LBKIT_ISTIO_H_
#define LBKIT_ISTIO_H_

#include <map>
#include <string>
#include <vector>

#include <grpcpp/support/channel_arguments.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit {

struct IstioTranslation {
  // The service config JSON (one line).
  std::string service_config;
  // Fields that could not be carried over, each with where and why.
  std::vector<std::string> warnings;
  // What Istio sets on the connection and gRPC has a channel argument for
  // (connectTimeout, tcpKeepalive, idleTimeout), e.g.
  // {"grpc.min_reconnect_backoff_ms": 30000}.
  std::map<std::string, int> channel_args;

  // Sets the service config and the channel arguments on `args`:
  //   grpc::ChannelArguments args;
  //   t->ApplyTo(&args);
  //   auto channel = grpc::CreateCustomChannel(target, creds, args);
  void ApplyTo(grpc::ChannelArguments* args) const;
};

struct IstioOptions {
  // The service to translate for when the stream has several (see below).
  std::string host;
  // The Service port the client calls: selects that port's
  // portLevelSettings, as Istio does. 0: none (portLevelSettings warned).
  int port = 0;
};

// `yaml`: one YAML stream of DestinationRule and VirtualService objects
// (networking.istio.io v1, v1beta1 or v1alpha3), or kubectl's `List` of
// them; other kinds are skipped with a warning. `host`: the service to
// translate for when the stream has several ("reviews" is read in each
// rule's namespace, as Istio reads it); empty takes the first
// DestinationRule's (else the first VirtualService's). INVALID_ARGUMENT
// names the document and path of malformed input.
absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml,
                                                absl::string_view host = "");
absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml,
                                                const IstioOptions& options);

}  // namespace lbkit

#endif  // LBKIT_ISTIO_H_
