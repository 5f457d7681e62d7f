// The call tracker a leaf policy's picker attaches to every call it
// completes, so stats::EndpointStats counts the pick, its status code and
// its duration (lbkit::DumpState(), PrometheusText()), with a policy's own
// per-call work (least request's in-flight count and latency estimate)
// stored inline: one pooled object per call, whatever the policy adds.
// It lives here, not in stats/, because it is a gRPC call tracker: stats/
// stays free of gRPC's internal headers.
//
//   return PickResult::Complete(subchannel, CountCall(endpoint_stats));
//   return PickResult::Complete(subchannel, CountCall(Counted(endpoint_stats), MyHooks{...}));
//
// Hooks: a movable value with `void Start()`, `void Finish(const
// FinishArgs&)` and a destructor; the tracker calls them around its own
// counting, with or without stats.

#ifndef LBKIT_POLICIES_COMMON_CALL_COUNTER_H_
#define LBKIT_POLICIES_COMMON_CALL_COUNTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "common/fast_clock.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "stats/stats.h"

namespace lbkit::policies {

using SubchannelCallTracker = grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface;

namespace counting {

// Per-thread free lists of tracker-sized blocks (one per 16-byte size
// class): the channel frees trackers on its own threads, which then reuse
// them, so a call costs no allocation in steady state. Trivial, so that
// reaching it costs no thread-local initialisation check; a thread's first
// free registers what empties the lists when the thread exits.
struct FreeLists {
  struct Node {
    Node* next;
  };
  static constexpr size_t kGranule = 16;
  static constexpr size_t kClasses = 16;  // blocks up to 256 bytes
  static constexpr uint32_t kCap = 4096;
  static constexpr size_t ClassOf(size_t size) { return (size + kGranule - 1) / kGranule - 1; }

  Node* head[kClasses];
  uint32_t size[kClasses];
  bool registered;  // the exit hook
  bool destroyed;   // past it: blocks go straight back to the heap
};
inline thread_local FreeLists free_lists{};

void RegisterFreeListsExit();

inline void* PoolAllocate(size_t size) {
  const size_t c = FreeLists::ClassOf(size);
  if (c >= FreeLists::kClasses) return ::operator new(size);
  FreeLists& lists = free_lists;
  if (FreeLists::Node* n = lists.head[c]; n != nullptr) {
    lists.head[c] = n->next;
    --lists.size[c];
    return n;
  }
  // Rounded up to the class, so that any block of a class fits any request.
  return ::operator new((c + 1) * FreeLists::kGranule);
}

inline void PoolFree(void* p, size_t size) {
  const size_t c = FreeLists::ClassOf(size);
  FreeLists& lists = free_lists;
  if (c >= FreeLists::kClasses || lists.destroyed || lists.size[c] >= FreeLists::kCap) {
    ::operator delete(p);
    return;
  }
  if (!lists.registered) RegisterFreeListsExit();
  auto* n = static_cast<FreeLists::Node*>(p);
  n->next = lists.head[c];
  lists.head[c] = n;
  ++lists.size[c];
}

struct NoHooks {
  void Start() {}
  void Finish(const SubchannelCallTracker::FinishArgs&) {}
};

// Forwards to a policy's own heap-allocated tracker (bounded load's).
struct ForwardTo {
  std::unique_ptr<SubchannelCallTracker> inner;
  void Start() {
    if (inner != nullptr) inner->Start();
  }
  void Finish(const SubchannelCallTracker::FinishArgs& args) {
    if (inner != nullptr) inner->Finish(args);
  }
};

template <typename Hooks>
class CountedCall final : public SubchannelCallTracker {
 public:
  // `stats`: null when counting is off. It stays valid until this tracker
  // reports the call finished or abandoned (stats::EndpointStats).
  CountedCall(stats::EndpointStats* stats, Hooks hooks) : stats_(stats), hooks_(std::move(hooks)) {
    if (stats_ != nullptr) stats_->CountPick();
  }
  ~CountedCall() override {
    if (stats_ != nullptr && !finished_) stats_->CallAbandoned();
  }

  void Start() override {
    start_cycles_ = lbkit::internal::CycleNow();
    started_ = true;
    hooks_.Start();
  }

  void Finish(FinishArgs args) override {
    hooks_.Finish(args);
    if (stats_ == nullptr || !started_) return;
    finished_ = true;
    stats_->CallFinished(static_cast<int>(args.status.code()),
                         lbkit::internal::CyclesBetween(start_cycles_, lbkit::internal::CycleNow()));
  }

  static void* operator new(size_t size) { return PoolAllocate(size); }
  static void operator delete(void* p, size_t size) { PoolFree(p, size); }

 private:
  stats::EndpointStats* const stats_;
  uint64_t start_cycles_ = 0;
  bool started_ = false;
  bool finished_ = false;
  Hooks hooks_;
};

}  // namespace counting

// `endpoint`, or null when counting is off (stats::Enabled()): what to
// pass to CountCall() with hooks, read once per pick so that hooks that use
// the stats too see the same answer.
inline stats::EndpointStats* Counted(stats::EndpointStats* endpoint) {
  return stats::Enabled() ? endpoint : nullptr;
}

// A tracker running `hooks` and counting the call on `counted` (from
// Counted(); null: not counted).
template <typename Hooks>
std::unique_ptr<SubchannelCallTracker> CountCall(stats::EndpointStats* counted, Hooks hooks) {
  return std::make_unique<counting::CountedCall<Hooks>>(counted, std::move(hooks));
}
// A tracker counting one call on `endpoint`; none when counting is off.
inline std::unique_ptr<SubchannelCallTracker> CountCall(stats::EndpointStats* endpoint) {
  if (!stats::Enabled()) return nullptr;
  return std::make_unique<counting::CountedCall<counting::NoHooks>>(endpoint, counting::NoHooks{});
}
// With a policy's own tracker (`inner`, may be null), forwarded to.
inline std::unique_ptr<SubchannelCallTracker> CountCall(
    const std::shared_ptr<stats::EndpointStats>& endpoint,
    std::unique_ptr<SubchannelCallTracker> inner) {
  if (!stats::Enabled()) return inner;
  return std::make_unique<counting::CountedCall<counting::ForwardTo>>(
      endpoint.get(), counting::ForwardTo{std::move(inner)});
}

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_CALL_COUNTER_H_
