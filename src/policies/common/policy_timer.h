// A policy's timer: runs a callback on the policy's WorkSerializer once a
// delay has passed on the channel's EventEngine (so a test's fake clock
// drives it), at most one pending at a time. Every lbkit policy timer is one
// of these: slow start's picker rebuilds, health-check polls, outlier
// ejection's interval and un-ejections.
//
//   PolicyTimer timer_{helper->GetEventEngine(), work_serializer()};
//   timer_.ArmLocked(Duration::Seconds(10), [this] { OnIntervalLocked(); });
//   ... in ShutdownLocked(): timer_.CancelLocked();
//
// The callback may capture the owner's `this` without a reference: it runs
// only if the timer was neither re-armed nor cancelled since, and the owner
// cancels it on the WorkSerializer before it can be destroyed (a policy in
// ShutdownLocked, anything else before it leaves the policy's maps). That
// check is made on the WorkSerializer, so a callback the EventEngine had
// already started when Cancel was called is harmless.

#ifndef LBKIT_POLICIES_COMMON_POLICY_TIMER_H_
#define LBKIT_POLICIES_COMMON_POLICY_TIMER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <grpc/event_engine/event_engine.h>

#include "grpc_internal/abi_guard.h"
#include "src/core/lib/gprpp/time.h"
#include "src/core/lib/gprpp/work_serializer.h"

namespace lbkit::policies {

class PolicyTimer {
 public:
  PolicyTimer(grpc_event_engine::experimental::EventEngine* engine,
              std::shared_ptr<grpc_core::WorkSerializer> serializer)
      : engine_(engine), serializer_(std::move(serializer)) {}
  ~PolicyTimer() { CancelLocked(); }
  PolicyTimer(const PolicyTimer&) = delete;
  PolicyTimer& operator=(const PolicyTimer&) = delete;

  // Runs `fn` after `delay`, replacing a pending callback.
  void ArmLocked(grpc_core::Duration delay, std::function<void()> fn);
  void CancelLocked();
  bool armed() const { return handle_.has_value(); }

 private:
  // WorkSerializer only: bumped by every arm and cancel, so a callback runs
  // only while it is the latest.
  struct Generation {
    uint64_t value = 0;
  };

  grpc_event_engine::experimental::EventEngine* const engine_;
  const std::shared_ptr<grpc_core::WorkSerializer> serializer_;
  const std::shared_ptr<Generation> generation_ = std::make_shared<Generation>();
  std::optional<grpc_event_engine::experimental::EventEngine::TaskHandle> handle_;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_POLICY_TIMER_H_
