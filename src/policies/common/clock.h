// Where a policy reads the time. Policies take their timers from the
// channel's EventEngine (policy_timer.h); an EventEngine that also derives
// from PolicyClock gives them its time as well, so a test whose fake engine
// advances a fake clock advances what a policy measures too (least
// request's peak EWMA). Any other engine: the steady clock.
//
//   const PolicyClock* clock = ClockOf(helper->GetEventEngine());  // at creation
//   const uint64_t start = CallTimerStart(clock);                  // on any thread
//   const int64_t rtt = CallTimerElapsed(clock, start);
//   const int64_t now = DecayNowNanos(clock);    // to decay an estimate at a pick
//   ewma.Observe(rtt, SampleNowNanos(clock));    // to weigh a new sample
//
// Without an engine clock, call durations use the cycle clock and a pick's
// decay the coarse clock (common/fast_clock.h), each a fraction of the
// steady clock's cost. A sample's time stamp takes the steady clock: the
// weight of a sample is 1 - exp(-dt/decay) with dt the time since the last
// one, and at a tick's resolution every sample but the first of a tick
// would weigh nothing. Both share CLOCK_MONOTONIC's timebase.

#ifndef LBKIT_POLICIES_COMMON_CLOCK_H_
#define LBKIT_POLICIES_COMMON_CLOCK_H_

#include <cstdint>

#include <grpc/event_engine/event_engine.h>

#include "common/fast_clock.h"

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

// For measuring a call: an opaque start and the nanoseconds since it.
inline uint64_t CallTimerStart(const PolicyClock* clock) {
  if (clock != nullptr) return static_cast<uint64_t>(clock->NowNanos());
  return internal::CycleNow();
}
inline int64_t CallTimerElapsed(const PolicyClock* clock, uint64_t start) {
  if (clock != nullptr) return clock->NowNanos() - static_cast<int64_t>(start);
  return internal::CyclesBetween(start, internal::CycleNow());
}

// For decaying an estimate over seconds at a pick: a tick's resolution is
// plenty.
inline int64_t DecayNowNanos(const PolicyClock* clock) {
  if (clock != nullptr) return clock->NowNanos();
  return internal::CoarseNowNanos();
}

// For stamping a sample (once per finished call).
inline int64_t SampleNowNanos(const PolicyClock* clock) {
  if (clock != nullptr) return clock->NowNanos();
  return internal::SteadyNowNanos();
}

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_CLOCK_H_
