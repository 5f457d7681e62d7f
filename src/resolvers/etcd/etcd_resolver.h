// lbkit-etcd: endpoints from etcd, kept current by a watch.
//
//   lbkit-etcd://10.0.0.1:2379,10.0.0.2:2379/services/greeter/
//
// Every key under the prefix (here "/services/greeter/"; a missing trailing
// "/" is added) holds one endpoint object with lbkit-file's schema:
//   {"address": "10.0.0.7:50051", "locality": {"region": "r", "zone": "a"},
//    "weight": 1, "labels": {"version": "v1"}}
// The resolver lists the prefix, then watches it from the listed revision
// over a channel of its own to the members named (round robin, so it moves
// to another member when one goes). A broken watch resumes from the last
// revision seen; a compacted one re-lists. A value that does not parse is
// skipped with one log line naming the key; it never empties the endpoint
// set. lbkit::EtcdRegistration (lbkit/etcd.h) writes such keys.

#ifndef LBKIT_RESOLVERS_ETCD_ETCD_RESOLVER_H_
#define LBKIT_RESOLVERS_ETCD_ETCD_RESOLVER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit::resolvers {

inline constexpr absl::string_view kEtcdScheme = "lbkit-etcd";

struct EtcdTarget {
  std::string endpoints;  // "HOST:PORT,HOST:PORT"
  std::string prefix;     // "/services/greeter/"
};

// The URI's authority and path; errors say what the target should look like.
absl::StatusOr<EtcdTarget> ParseEtcdTarget(absl::string_view authority, absl::string_view path);

// The prefix with its trailing "/" (what registration and resolver agree on).
std::string NormalizeEtcdPrefix(absl::string_view prefix);

// For tests and diagnostics: the live lbkit-etcd watches.
struct EtcdWatchInfo {
  std::string prefix;
  std::string peer;  // the member the watch stream is on, "" when none
  int lists = 0;     // full lists (1 + re-lists)
};
std::vector<EtcdWatchInfo> EtcdWatches();

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_ETCD_ETCD_RESOLVER_H_
