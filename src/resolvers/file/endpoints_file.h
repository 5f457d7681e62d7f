// The endpoints file lbkit-file follows:
//
//   {
//     "endpoints": [
//       {"address": "127.0.0.1:50051",
//        "locality": {"region": "us-west1", "zone": "us-west1-a", "subZone": ""},
//        "weight": 1,
//        "labels": {"version": "v1"}}
//     ],
//     "serviceConfig": {"loadBalancingConfig": [{"lbkit_round_robin": {}}]}
//   }
//
// `address` is required; `locality`, `weight` (1..2^31-1, default 1),
// `labels` and `serviceConfig` are optional. Unknown fields are ignored.

#ifndef LBKIT_RESOLVERS_FILE_ENDPOINTS_FILE_H_
#define LBKIT_RESOLVERS_FILE_ENDPOINTS_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "resolvers/common/endpoint_spec.h"

namespace lbkit::resolvers {

struct EndpointsFile {
  std::vector<EndpointSpec> endpoints;
  // The serviceConfig object re-serialised, when present. Its content is
  // validated by the resolver (it needs the registered policies).
  absl::optional<std::string> service_config_json;
};

// Parses the file's text. Every problem is reported at once, each with its
// field path, in gRPC's style:
//   [field:endpoints[1].weight error:must be an integer in [1, 2147483647]]
// A JSON syntax error names its line and column.
absl::StatusOr<EndpointsFile> ParseEndpointsFile(absl::string_view text);

// One endpoint object of the same schema on its own (lbkit-etcd's values):
//   {"address": "10.0.0.7:50051", "locality": {"zone": "a"}, "weight": 2}
// Errors have gRPC's field paths: [field:weight error:must be ...].
absl::StatusOr<EndpointSpec> ParseEndpointObject(absl::string_view text);

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_FILE_ENDPOINTS_FILE_H_
