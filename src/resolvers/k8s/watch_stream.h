// A Kubernetes watch response, as the bytes arrive: newline-delimited JSON
// events ({"type": "ADDED", "object": {...}}), split by the network at any
// byte. WatchStream reassembles lines and parses each into a WatchEvent;
// the fuzzer (tests/fuzz/k8s_watch_fuzzer.cc) feeds it arbitrary bytes.
//
//   WatchStream stream;
//   stream.Feed(chunk, [](absl::StatusOr<WatchEvent> event) { ... });
//   if (stream.HasPartialLine()) { /* the stream ended inside an event */ }

#ifndef LBKIT_RESOLVERS_K8S_WATCH_STREAM_H_
#define LBKIT_RESOLVERS_K8S_WATCH_STREAM_H_

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit::resolvers::k8s {

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  nlohmann::json object;
  std::string resource_version;  // the object's metadata.resourceVersion
};

// One event line. Errors say what is wrong with it (not JSON, no type, an
// unknown type, no object).
absl::StatusOr<WatchEvent> ParseWatchEvent(absl::string_view line);

class WatchStream {
 public:
  // A line longer than this is an error (a Kubernetes object is at most
  // about 1.5 MiB in etcd; the limit leaves room for JSON's overhead).
  static constexpr size_t kMaxLineBytes = 16 << 20;

  // Calls `on_event` for every complete line in `bytes` (blank lines are
  // skipped). Returns false, after reporting the error once, when a line
  // exceeds kMaxLineBytes: the stream cannot be trusted afterwards.
  bool Feed(absl::string_view bytes,
            const std::function<void(absl::StatusOr<WatchEvent>)>& on_event);
  bool HasPartialLine() const { return !partial_.empty(); }
  size_t partial_bytes() const { return partial_.size(); }

 private:
  std::string partial_;
};

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_WATCH_STREAM_H_
