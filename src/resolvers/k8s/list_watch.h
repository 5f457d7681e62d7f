// Keeping a copy of one kind of Kubernetes object current, as client-go's
// reflector does: list (in pages of 500, at one resourceVersion), then watch
// from the list's resourceVersion with bookmarks; a watch the server ends
// is resumed from the last version seen; `410 Gone` (or an ERROR event
// carrying it) means a new list. Errors back off exponentially with jitter
// (0.5 s doubling to 30 s) and never clear what was listed.
//
// Each ListWatch runs on a thread of its own that holds no gRPC object:
// it reports through the callbacks, which must be thread-safe.
//
//   auto lw = ListWatch::Start(client, {"/api/v1/namespaces/default/pods", "app=greeter", "", "pods"},
//                              callbacks);
//   ...
//   lw->Stop();  // returns at once; the thread ends by itself

#ifndef LBKIT_RESOLVERS_K8S_LIST_WATCH_H_
#define LBKIT_RESOLVERS_K8S_LIST_WATCH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "resolvers/k8s/kube_client.h"

namespace lbkit::resolvers::k8s {

struct ListWatchSpec {
  std::string path;            // the collection, e.g. /api/v1/namespaces/ns/pods
  std::string label_selector;  // "" for none
  std::string field_selector;  // "" for none
  std::string resource;        // "pods", for messages and stats
  // Collections to fall back to, in order, while the server answers 404 to
  // a list (an API group served at an older version only).
  std::vector<std::string> fallback_paths = {};
};

struct ListWatchCallbacks {
  // A complete list: replaces everything known.
  std::function<void(std::vector<nlohmann::json> items)> on_list;
  // ADDED/MODIFIED (`deleted` false) or DELETED.
  std::function<void(const nlohmann::json& object, bool deleted)> on_event;
  // A problem; the copy stays as it was. `before_first_list` says whether
  // anything was ever listed.
  std::function<void(const absl::Status& error)> on_error;
  // After an error, the first event or bookmark of a watch: the problem is
  // over. May be empty.
  std::function<void()> on_recovered;
};

struct ListWatchStats {
  std::string resource;
  std::string path;  // the collection in use (after any fallback)
  std::string resource_version;
  uint64_t lists = 0;    // complete lists (the first, then re-lists)
  uint64_t relists = 0;  // lists after the first (410 Gone, or an error)
  uint64_t watches = 0;  // watch requests started
  uint64_t events = 0;   // ADDED/MODIFIED/DELETED events applied
  uint64_t bookmarks = 0;
  uint64_t errors = 0;
  std::string last_error;
  bool synced = false;  // listed at least once
};

class ListWatch {
 public:
  // Test seam: how long the server may keep a watch open (client-go picks
  // 5 to 10 minutes at random).
  static void SetWatchTimeoutForTesting(int seconds);

  static std::shared_ptr<ListWatch> Start(std::shared_ptr<const KubeClient> client,
                                          ListWatchSpec spec, ListWatchCallbacks callbacks);
  ~ListWatch();
  void Stop();
  ListWatchStats stats() const;

 private:
  struct State;
  explicit ListWatch(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// "pods is forbidden: ..." from a Status body, else the HTTP status; with
// what to do about 401 and 403.
absl::Status ApiError(absl::string_view verb, const ListWatchSpec& spec,
                      const KubeClient::Response& response);

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_LIST_WATCH_H_
