// Exponentially weighted moving averages of an endpoint's round-trip time,
// for least request's latency-aware costs. Two estimators:
//
//  kPeak (peakEwma): Linkerd's (tower's PeakEwma) and Finagle's, exactly:
//    starts at the default RTT;
//    Observe(rtt): dt = now - stamp
//                  rtt > estimate: estimate = rtt        (peaks count at once)
//                  else: w = exp(-dt / decay); estimate = estimate*w + rtt*(1-w)
//  kMean (latencyEwma, lbkit's): the first sample replaces the default RTT,
//    and every later one blends in, slower or faster, with weight
//    max(1 - exp(-dt / decay), 1/20): a mean with no peak rule that follows
//    a busy endpoint's last ~20 calls and a quiet one's last decay period.
//    Until the first sample the default is a placeholder, and the policy
//    probes the endpoint instead of comparing it (Seeded()).
//
//  Both: Estimate(now) = estimate * exp(-(now - stamp) / decay), tower's
//  cost() observing 0 without writing it back (decay factors compose, so
//  the result is the same): an endpoint that answers nothing drifts back
//  toward 0 and is tried again.
//
// Why lbkit's own: on a busy machine every endpoint's latency has peaks
// (scheduling, GC, a full run queue) many times per decay period, so the
// peak rule holds every estimate near its recent maximum and a backend
// that is 3x slower on average stops looking different; with tower's
// start, a default RTT far above the real one dominates the first decay
// periods; and a purely time-weighted mean is slow to notice that a backend
// which now gets 1% of the calls has recovered. The sample floor lets the
// few calls it gets count. docs/latency-aware.md has the measurements.
//
// Thread-safe: calls finishing at once update the estimate with a
// compare-and-swap; a lost race on the time stamp only shifts the decay by
// the length of the race. Configure() is the control plane's.
//
//   RttEwma ewma(RttEwma::Mode::kMean, /*decay_ns=*/1e9, /*initial_ns=*/30e6, now_ns);
//   ewma.Observe(/*rtt_ns=*/2e6, now_ns);
//   double estimate = ewma.Estimate(now_ns);

#ifndef LBKIT_ALGORITHMS_RTT_EWMA_H_
#define LBKIT_ALGORITHMS_RTT_EWMA_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace lbkit::algorithms {

// exp(-x) for x >= 0 to a relative 1e-6, in a few multiplications instead
// of std::exp's call (a pick computes two). Between a busy endpoint's calls
// x is tiny (0.3 ms over a 1 s decay): four Taylor terms. Otherwise
// exp(-x) = 2^-k * 2^-f with k whole and f in [0, 1): 2^-f by its Taylor
// series in f ln 2 < 0.7, 2^-k by building the double's exponent.
inline double ExpNegative(double x) {
  if (x < 0.0625) return 1 - x * (1 - x * (0.5 - x * (1.0 / 6 - x * (1.0 / 24))));
  if (!(x < 700)) return 0;  // and NaN: an estimate of 0 (Estimate() clamps)
  const double y = x * 1.4426950408889634;  // log2(e)
  const auto k = static_cast<int64_t>(y);
  const double t = (y - static_cast<double>(k)) * 0.6931471805599453;  // f ln 2
  const double p =
      1 - t * (1 - t * (1.0 / 2 - t * (1.0 / 6 - t * (1.0 / 24 -
          t * (1.0 / 120 - t * (1.0 / 720 - t * (1.0 / 5040 - t * (1.0 / 40320))))))));
  // 2^-k: exponent field 1023 - k, in range for k <= 1010.
  const uint64_t bits = static_cast<uint64_t>(1023 - k) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

class RttEwma {
 public:
  enum class Mode { kPeak, kMean };

  static constexpr double kPeakDefaultDecayNs = 10e9;  // Linkerd, Finagle: 10 s
  static constexpr double kMeanDefaultDecayNs = 1e9;   // lbkit's latencyEwma
  static constexpr double kDefaultInitialNs = 30e6;    // Linkerd: 30 ms
  static constexpr double kMeanMinSampleWeight = 1.0 / 20;

  // Unconfigured: Configure() must run before the first Estimate().
  RttEwma() = default;
  RttEwma(Mode mode, double decay_ns, double initial_ns, int64_t now_ns) {
    Configure(mode, decay_ns, initial_ns, now_ns);
  }

  // Restarts the estimate at `initial_ns` when the parameters differ from
  // the current ones (and returns true); keeps what was learned otherwise.
  bool Configure(Mode mode, double decay_ns, double initial_ns, int64_t now_ns) {
    if (configured_ && mode == mode_ && decay_ns == decay_ns_ && initial_ns == initial_ns_) {
      return false;
    }
    configured_ = true;
    mode_ = mode;
    decay_ns_ = decay_ns;
    peak_.store(mode == Mode::kPeak, std::memory_order_relaxed);
    seeded_.store(mode == Mode::kPeak, std::memory_order_relaxed);
    inverse_decay_.store(1 / decay_ns, std::memory_order_relaxed);
    initial_ns_ = initial_ns;
    estimate_ns_.store(initial_ns, std::memory_order_relaxed);
    stamp_ns_.store(now_ns, std::memory_order_relaxed);
    return true;
  }

  // Returns the estimate after the sample.
  double Observe(double rtt_ns, int64_t now_ns) {
    double estimate = estimate_ns_.load(std::memory_order_relaxed);
    double updated;
    if (!seeded_.load(std::memory_order_relaxed)) {
      // kMean's first sample: the default was only a placeholder.
      seeded_.store(true, std::memory_order_relaxed);
      estimate_ns_.store(rtt_ns, std::memory_order_relaxed);
      stamp_ns_.store(now_ns, std::memory_order_relaxed);
      return rtt_ns;
    }
    const bool peak = peak_.load(std::memory_order_relaxed);
    const double w = peak ? Decay(now_ns) : std::min(Decay(now_ns), 1 - kMeanMinSampleWeight);
    do {
      updated = peak && rtt_ns > estimate ? rtt_ns : estimate * w + rtt_ns * (1 - w);
    } while (!estimate_ns_.compare_exchange_weak(estimate, updated, std::memory_order_relaxed));
    stamp_ns_.store(now_ns, std::memory_order_relaxed);
    return updated;
  }

  // Whether a sample has set the estimate (kMean; kPeak always is).
  bool Seeded() const { return seeded_.load(std::memory_order_relaxed); }

  // A call that failed: no sample (a backend that fails fast must not look
  // fast), but an unseeded kMean estimate keeps its default from now on,
  // so that a failing endpoint is not probed again and again.
  void ObserveFailure(int64_t now_ns) {
    if (seeded_.load(std::memory_order_relaxed)) return;
    stamp_ns_.store(now_ns, std::memory_order_relaxed);
    seeded_.store(true, std::memory_order_relaxed);
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
    return ExpNegative(static_cast<double>(now_ns - stamp) *
                       inverse_decay_.load(std::memory_order_relaxed));
  }

  std::atomic<double> inverse_decay_{1 / kPeakDefaultDecayNs};
  // Control plane only.
  bool configured_ = false;
  Mode mode_ = Mode::kPeak;
  double decay_ns_ = kPeakDefaultDecayNs;
  double initial_ns_ = kDefaultInitialNs;
  std::atomic<bool> peak_{true};
  std::atomic<bool> seeded_{true};
  std::atomic<double> estimate_ns_{kDefaultInitialNs};
  std::atomic<int64_t> stamp_ns_{0};
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_RTT_EWMA_H_
