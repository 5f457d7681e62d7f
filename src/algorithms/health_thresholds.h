// Active health checking's verdict from consecutive results, as Envoy's
// `unhealthy_threshold` / `healthy_threshold`: an endpoint's health flips
// only after that many results in a row disagree with it. Before its first
// result it is unknown (and gets no traffic, as Envoy's new hosts); the
// first result decides at once.
//
//   HealthThresholds h(/*unhealthy=*/3, /*healthy=*/2);
//   h.Record(true);   // -> kHealthy (first result)
//   h.Record(false);  // still kHealthy (1 of 3)

#ifndef LBKIT_ALGORITHMS_HEALTH_THRESHOLDS_H_
#define LBKIT_ALGORITHMS_HEALTH_THRESHOLDS_H_

#include <algorithm>
#include <cstdint>

namespace lbkit::algorithms {

class HealthThresholds {
 public:
  enum class State { kUnknown, kHealthy, kUnhealthy };

  HealthThresholds(uint32_t unhealthy_threshold, uint32_t healthy_threshold)
      : unhealthy_threshold_(std::max<uint32_t>(1, unhealthy_threshold)),
        healthy_threshold_(std::max<uint32_t>(1, healthy_threshold)) {}

  State state() const { return state_; }

  // One check's result; true when the state changed.
  bool Record(bool healthy) {
    if (healthy) {
      failures_ = 0;
      ++successes_;
      if (state_ == State::kHealthy) return false;
      if (state_ == State::kUnknown || successes_ >= healthy_threshold_) {
        state_ = State::kHealthy;
        return true;
      }
      return false;
    }
    successes_ = 0;
    ++failures_;
    if (state_ == State::kUnhealthy) return false;
    if (state_ == State::kUnknown || failures_ >= unhealthy_threshold_) {
      state_ = State::kUnhealthy;
      return true;
    }
    return false;
  }

 private:
  const uint32_t unhealthy_threshold_;
  const uint32_t healthy_threshold_;
  State state_ = State::kUnknown;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_HEALTH_THRESHOLDS_H_
