#include "policies/common/call_counter.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"

namespace lbkit::policies {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

//
// The call tracker and its per-thread pool
//

class CallCounter final : public grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface {
 public:
  CallCounter(std::shared_ptr<stats::EndpointStats> endpoint,
              std::unique_ptr<SubchannelCallTrackerInterface> inner)
      : endpoint_(std::move(endpoint)), inner_(std::move(inner)) {}

  ~CallCounter() override {
    if (started_ && !finished_) endpoint_->CallAbandoned();
  }

  void Start() override {
    started_ = true;
    start_ns_ = NowNs();
    endpoint_->CallStarted();
    if (inner_ != nullptr) inner_->Start();
  }

  void Finish(FinishArgs args) override {
    const int code = static_cast<int>(args.status.code());
    if (inner_ != nullptr) inner_->Finish(std::move(args));
    if (started_) {
      finished_ = true;
      endpoint_->CallFinished(code, NowNs() - start_ns_);
    }
  }

  // Pooled: a call tracker per call must not cost an allocation.
  static void* operator new(size_t size);
  static void operator delete(void* p);

 private:
  std::shared_ptr<stats::EndpointStats> endpoint_;
  std::unique_ptr<SubchannelCallTrackerInterface> inner_;
  int64_t start_ns_ = 0;
  bool started_ = false;
  bool finished_ = false;
};

// Trackers freed on a thread go to that thread's list, up to a cap; the
// channel frees them on its own threads, which then reuse them.
struct FreeList {
  struct Node {
    Node* next;
  };
  static constexpr size_t kCap = 4096;
  Node* head = nullptr;
  size_t size = 0;
  // Trackers freed on this thread after its list is gone (thread exit) go
  // straight back to the heap.
  bool destroyed = false;
  ~FreeList() {
    destroyed = true;
    while (head != nullptr) {
      Node* n = head;
      head = n->next;
      ::operator delete(n);
    }
    size = 0;
  }
};
thread_local FreeList free_list;

void* CallCounter::operator new(size_t size) {
  static_assert(sizeof(CallCounter) >= sizeof(FreeList::Node));
  if (size == sizeof(CallCounter) && !free_list.destroyed && free_list.head != nullptr) {
    FreeList::Node* n = free_list.head;
    free_list.head = n->next;
    --free_list.size;
    return n;
  }
  return ::operator new(size);
}

void CallCounter::operator delete(void* p) {
  if (p == nullptr) return;
  if (!free_list.destroyed && free_list.size < FreeList::kCap) {
    auto* n = static_cast<FreeList::Node*>(p);
    n->next = free_list.head;
    free_list.head = n;
    ++free_list.size;
    return;
  }
  ::operator delete(p);
}

}  // namespace

std::unique_ptr<grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface> CountCall(
    const std::shared_ptr<stats::EndpointStats>& endpoint,
    std::unique_ptr<grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface> inner) {
  if (!stats::Enabled()) return inner;
  endpoint->CountPick();
  return std::make_unique<CallCounter>(endpoint, std::move(inner));
}

}  // namespace lbkit::policies
