// Where a policy reads the time. Policies take their timers from the
// channel's EventEngine (policy_timer.h); an EventEngine that also derives
// from PolicyClock gives them its time as well, so a test whose fake engine
// advances a fake clock advances what a policy measures too (least
// request's peak EWMA). Any other engine: the steady clock.
//
//   const PolicyClock* clock = ClockOf(helper->GetEventEngine());  // at creation
//   const int64_t start = NowNanos(clock);                         // on any thread

#ifndef LBKIT_POLICIES_COMMON_CLOCK_H_
#define LBKIT_POLICIES_COMMON_CLOCK_H_

#include <chrono>
#include <cstdint>

#include <grpc/event_engine/event_engine.h>

namespace lbkit::policies {

class PolicyClock {
 public:
  // Nanoseconds on a monotonic clock; any thread.
  virtual int64_t NowNanos() const = 0;
  // Whether policies should use it (an engine may offer a clock it does
  // not always want used: a benchmark measures the steady clock's cost).
  virtual bool UseAsPolicyClock() const { return true; }

 protected:
  ~PolicyClock() = default;
};

// The engine's clock if it has one, else null (the steady clock). Once per
// policy: a dynamic_cast, too slow for the pick path.
inline const PolicyClock* ClockOf(grpc_event_engine::experimental::EventEngine* engine) {
  const auto* clock = dynamic_cast<const PolicyClock*>(engine);
  return clock != nullptr && clock->UseAsPolicyClock() ? clock : nullptr;
}

inline int64_t NowNanos(const PolicyClock* clock) {
  if (clock != nullptr) return clock->NowNanos();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_CLOCK_H_
