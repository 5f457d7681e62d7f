// lbkit-file: endpoints (address, locality, weight, labels) and an optional
// service config from a JSON file, followed while the channel runs.
//
//   lbkit-file:///etc/lbkit/greeter-endpoints.json
//   lbkit-file:///etc/lbkit/greeter-endpoints.json?refresh=1s
//
// The file's format is in endpoints_file.h. Changes are seen through inotify
// on the file's directory (in-place rewrites and atomic rename-into-place)
// and a periodic re-check (`refresh`, default 5s, 10ms..24h, "1s" or
// "500ms"). Unchanged content causes no update. A bad file keeps the last
// good endpoint set and logs one line naming the file and the problem;
// before any good file, RPCs fail with UNAVAILABLE carrying that message.

#ifndef LBKIT_RESOLVERS_FILE_FILE_RESOLVER_H_
#define LBKIT_RESOLVERS_FILE_FILE_RESOLVER_H_

#include "absl/strings/string_view.h"

namespace lbkit::resolvers {

inline constexpr absl::string_view kFileScheme = "lbkit-file";

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_FILE_FILE_RESOLVER_H_
