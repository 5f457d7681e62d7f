// lbkit-file: endpoints (address, locality, weight, labels) and an optional
// service config from a JSON file, followed while the channel runs.
//
//   lbkit-file:///etc/lbkit/greeter-endpoints.json
//   lbkit-file:///etc/lbkit/greeter-endpoints.json?refresh=1s
//
// The file's format is in endpoints_file.h. Changes are seen through inotify
// on the file's directory (in-place rewrites and atomic rename-into-place)
// and a periodic re-check (`refresh`, default 5s, 10ms..24h inclusive,
// "500ms", "1s", "5m", "24h"); a mounted Kubernetes ConfigMap's "..data" swap counts as a
// change of the file. Host names are looked up again on every re-check and
// re-resolution request. Unchanged content (and addresses) causes no
// update. A bad file keeps the last
// good endpoint set and logs one line naming the file and the problem;
// before any good file, RPCs fail with UNAVAILABLE carrying that message.

#ifndef LBKIT_RESOLVERS_FILE_FILE_RESOLVER_H_
#define LBKIT_RESOLVERS_FILE_FILE_RESOLVER_H_

#include <atomic>

#include "absl/strings/string_view.h"

namespace lbkit::resolvers {

inline constexpr absl::string_view kFileScheme = "lbkit-file";

// Test seams (tests/e2e/file_resolver_e2e_test.cc), to make the watcher
// thread's races with channel shutdown deterministic.
struct FileWatcherHooks {
  // Called on the watcher thread right after a result was handed to the
  // WorkSerializer, while the thread still holds its resolver reference.
  static inline std::atomic<void (*)()> after_post{nullptr};
  // How many resolvers were destroyed on a thread with no ExecCtx (a bug:
  // the channel objects they release need one).
  static inline std::atomic<int> destroyed_without_exec_ctx{0};
  // Re-resolution requests received, by every lbkit-file resolver.
  static inline std::atomic<int> reresolution_requests{0};
  // How many resolvers were destroyed at all.
  static inline std::atomic<int> destroyed{0};
};

}  // namespace lbkit::resolvers

#endif  // LBKIT_RESOLVERS_FILE_FILE_RESOLVER_H_
