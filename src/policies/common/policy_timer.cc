#include "policies/common/policy_timer.h"

#include <chrono>
#include <type_traits>
#include <utility>

#include "common/work_serializer_hop.h"

namespace lbkit::policies {

void PolicyTimer::ArmLocked(grpc_core::Duration delay, std::function<void()> fn) {
  CancelLocked();
  const uint64_t armed_as = ++generation_->value;
  handle_ = internal::RunAfterOnWorkSerializer(
      engine_, std::chrono::milliseconds(delay.millis()), serializer_,
      [this, generation = generation_, armed_as, fn = std::move(fn)] {
        if (generation->value != armed_as) return;  // cancelled or re-armed
        handle_.reset();
        fn();
      });
}

void PolicyTimer::CancelLocked() {
  if (!handle_.has_value()) return;
  ++generation_->value;
  engine_->Cancel(*handle_);
  handle_.reset();
}

}  // namespace lbkit::policies
