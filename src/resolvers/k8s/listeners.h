// The callbacks a shared watch runs after each change (one per channel),
// added and removed from any thread and run with no lock of the watch held.
//
//   Listeners listeners;
//   uint64_t id = listeners.Add([] { ... });
//   listeners.Notify();
//   listeners.Remove(id);

#ifndef LBKIT_RESOLVERS_K8S_LISTENERS_H_
#define LBKIT_RESOLVERS_K8S_LISTENERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lbkit::resolvers::k8s {

class Listeners {
 public:
  uint64_t Add(std::function<void()> listener) {
    absl::MutexLock lock(&mu_);
    const uint64_t id = next_++;
    listeners_[id] = std::move(listener);
    return id;
  }
  void Remove(uint64_t id) {
    absl::MutexLock lock(&mu_);
    listeners_.erase(id);
  }
  int size() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(listeners_.size());
  }
  // A listener removed meanwhile may still run once: each must cope (the
  // resolvers' Link does).
  void Notify() {
    std::vector<std::function<void()>> copy;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, listener] : listeners_) copy.push_back(listener);
    }
    for (const auto& listener : copy) listener();
  }

 private:
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> listeners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_LISTENERS_H_
