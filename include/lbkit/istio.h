// Istio DestinationRule / VirtualService YAML to the gRPC service config that
// does the same with lbkit's policies: what the `lbkit-istio` tool prints.
// In the lbkit_istio library (target lbkit::istio), apart from lbkit itself,
// because it needs yaml-cpp.
//
//   auto t = lbkit::TranslateIstio(yaml_text);
//   if (!t.ok()) { std::cerr << t.status() << "\n"; return 2; }
//   for (const auto& w : t->warnings) std::cerr << "warning: " << w << "\n";
//   args.SetServiceConfigJSON(t->service_config);
//
// Carried over: loadBalancer (simple, consistentHash, localityLbSetting),
// outlierDetection, connectionPool.http.http2MaxRequests, subsets with their
// trafficPolicy, and from a VirtualService its weighted routes to subsets,
// timeout and retries. Everything else is named in a warning with the
// reason; README "Coming from Istio" has the table.

#ifndef LBKIT_ISTIO_H_
#define LBKIT_ISTIO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit {

struct IstioTranslation {
  // The service config JSON (one line).
  std::string service_config;
  // Fields that could not be carried over, each with where and why.
  std::vector<std::string> warnings;
};

// `yaml`: one YAML stream of DestinationRule and VirtualService objects
// (networking.istio.io/v1beta1 or v1). `host`: the service to translate for
// when the stream has several; empty takes the first DestinationRule's.
// INVALID_ARGUMENT names the document and path of malformed or unknown input.
absl::StatusOr<IstioTranslation> TranslateIstio(absl::string_view yaml,
                                                absl::string_view host = "");

}  // namespace lbkit

#endif  // LBKIT_ISTIO_H_
