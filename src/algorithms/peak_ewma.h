// Peak-sensitive exponentially weighted moving average of round-trip time,
// as Linkerd (tower's PeakEwma) and Finagle estimate an endpoint's latency.
//
//   Observe(rtt): dt = now - stamp
//                 rtt > estimate: estimate = rtt          (peaks count at once)
//                 else: w = exp(-dt / decay); estimate = estimate*w + rtt*(1-w)
//   Estimate(now) = estimate * exp(-(now - stamp) / decay)
//
// Estimate() is tower's cost() observing 0 without writing it back (decay
// factors compose, so the result is the same): an endpoint that answers
// nothing drifts back toward 0 and is tried again.
//
// Thread-safe: calls finishing at once update the estimate with a
// compare-and-swap; a lost race on the time stamp only shifts the decay by
// the length of the race. Configure() is the control plane's.
//
//   PeakEwma ewma;                       // 10 s decay, starts at 30 ms
//   ewma.Observe(/*rtt_ns=*/2e6, now_ns);
//   double cost = ewma.Estimate(now_ns) * (in_flight + 1);

#ifndef LBKIT_ALGORITHMS_PEAK_EWMA_H_
#define LBKIT_ALGORITHMS_PEAK_EWMA_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace lbkit::algorithms {

class PeakEwma {
 public:
  static constexpr double kDefaultDecayNs = 10e9;      // Linkerd, Finagle: 10 s
  static constexpr double kDefaultInitialNs = 30e6;    // Linkerd: 30 ms

  // Unconfigured: Configure() must run before the first Estimate().
  PeakEwma() = default;
  PeakEwma(double decay_ns, double initial_ns, int64_t now_ns) {
    Configure(decay_ns, initial_ns, now_ns);
  }

  // Restarts the estimate at `initial_ns` when the parameters differ from
  // the current ones; keeps what was learned otherwise.
  void Configure(double decay_ns, double initial_ns, int64_t now_ns) {
    if (configured_ && decay_ns == decay_ns_.load(std::memory_order_relaxed) &&
        initial_ns == initial_ns_) {
      return;
    }
    configured_ = true;
    decay_ns_.store(decay_ns, std::memory_order_relaxed);
    initial_ns_ = initial_ns;
    estimate_ns_.store(initial_ns, std::memory_order_relaxed);
    stamp_ns_.store(now_ns, std::memory_order_relaxed);
  }

  void Observe(double rtt_ns, int64_t now_ns) {
    const double w = Decay(now_ns);
    double estimate = estimate_ns_.load(std::memory_order_relaxed);
    double updated;
    do {
      updated = rtt_ns > estimate ? rtt_ns : estimate * w + rtt_ns * (1 - w);
    } while (!estimate_ns_.compare_exchange_weak(estimate, updated,
                                                 std::memory_order_relaxed));
    stamp_ns_.store(now_ns, std::memory_order_relaxed);
  }

  // At least 1 ns: after ~745 idle decay periods the product would
  // underflow to 0, and a zero cost would stop comparing latency at all.
  double Estimate(int64_t now_ns) const {
    return std::max(1.0, estimate_ns_.load(std::memory_order_relaxed) * Decay(now_ns));
  }

 private:
  double Decay(int64_t now_ns) const {
    const int64_t stamp = stamp_ns_.load(std::memory_order_relaxed);
    if (now_ns <= stamp) return 1.0;
    return std::exp(-static_cast<double>(now_ns - stamp) /
                    decay_ns_.load(std::memory_order_relaxed));
  }

  std::atomic<double> decay_ns_{kDefaultDecayNs};
  // Control plane only.
  bool configured_ = false;
  double initial_ns_ = kDefaultInitialNs;
  std::atomic<double> estimate_ns_{kDefaultInitialNs};
  std::atomic<int64_t> stamp_ns_{0};
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_PEAK_EWMA_H_
