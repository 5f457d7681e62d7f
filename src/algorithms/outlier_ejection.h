// Outlier ejection decisions, as Envoy's outlier detector and gRPC's
// outlier_detection (gRFC A50) make them (Envoy's outlier_detection_impl.cc, gRFC A50):
// consecutive-error counters fed lock-free by every finished call, the
// per-interval success-rate and failure-percentage sweeps, the ejection
// budget (maxEjectionPercent, minHealthPercent) and the ejection time. No
// gRPC and no clock here: lbkit_outlier_ejection classifies each call's
// status, calls Record(), and drives the interval and ejection timers.
//
//   OutlierCounters counters;                 // one per endpoint
//   if (counters.Record(CallResult::Error(/*gateway=*/true), config)) {
//     // a consecutive threshold was crossed: eject now, if the budget allows
//   }

#ifndef LBKIT_ALGORITHMS_OUTLIER_EJECTION_H_
#define LBKIT_ALGORITHMS_OUTLIER_EJECTION_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace lbkit::algorithms {

struct OutlierConfig {
  // Consecutive thresholds; 0 turns one off.
  uint32_t consecutive_errors = 5;
  uint32_t consecutive_gateway_errors = 0;
  uint32_t consecutive_local_origin_failures = 5;
  // Istio/Envoy: without the split, local-origin failures (connection
  // failures, calls that never started) count as gateway errors.
  bool split_local_origin = false;
  uint32_t max_ejection_percent = 10;
  uint32_t min_health_percent = 0;
  int64_t base_ejection_ms = 30000;
  int64_t max_ejection_ms = 300000;

  struct SuccessRate {
    uint32_t stdev_factor = 1900;  // thousandths of a standard deviation
    uint32_t enforcement_percentage = 100;
    uint32_t minimum_hosts = 5;
    uint32_t request_volume = 100;
  };
  struct FailurePercentage {
    uint32_t threshold = 85;
    uint32_t enforcement_percentage = 100;
    uint32_t minimum_hosts = 5;
    uint32_t request_volume = 50;
  };
  std::optional<SuccessRate> success_rate;
  std::optional<FailurePercentage> failure_percentage;
};

// One call's outcome as the detector sees it.
struct CallResult {
  bool ok = false;        // for the interval's success rate (gRFC A50: OK or not)
  bool error = false;     // an errorStatusCodes code: counts towards consecutive errors
  bool gateway = false;   // UNAVAILABLE: counts towards consecutive gateway errors
  bool local = false;     // local origin: the connection failed, the call never started

  static CallResult Success() { return {true, false, false, false}; }
  static CallResult Error(bool gateway) { return {false, true, gateway, false}; }
  // Not OK, but not a code that counts as an error (e.g. NOT_FOUND).
  static CallResult OtherFailure() { return {false, false, false, false}; }
  static CallResult LocalFailure() { return {false, false, false, true}; }
};

// Per-endpoint counters. Record() runs on the call path from any thread:
// atomics only, no lock. Races between concurrent calls can shift a
// consecutive count by a call, as in Envoy.
class OutlierCounters {
 public:
  // Returns true when this call completed a run of consecutive errors
  // (of any enabled kind): the caller should try to eject the endpoint.
  bool Record(const CallResult& r, const OutlierConfig& config) {
    (r.ok ? success_ : failure_).fetch_add(1, std::memory_order_relaxed);
    if (r.local) {
      if (config.split_local_origin) {
        return Hit(local_, config.consecutive_local_origin_failures);
      }
      // Unsplit: a local failure is a gateway error (Envoy maps it to 503).
      const bool a = Hit(errors_, config.consecutive_errors);
      const bool b = Hit(gateway_, config.consecutive_gateway_errors);
      return a || b;
    }
    if (!r.error) {
      errors_.store(0, std::memory_order_relaxed);
      gateway_.store(0, std::memory_order_relaxed);
      return false;
    }
    const bool a = Hit(errors_, config.consecutive_errors);
    bool b = false;
    if (r.gateway) {
      b = Hit(gateway_, config.consecutive_gateway_errors);
    } else {
      gateway_.store(0, std::memory_order_relaxed);
    }
    return a || b;
  }

  // The call reached the endpoint: a local-origin success (split mode).
  void RecordConnected() { local_.store(0, std::memory_order_relaxed); }

  // The interval's calls so far, and a fresh interval.
  std::pair<uint64_t, uint64_t> TakeInterval() {
    return {success_.exchange(0, std::memory_order_relaxed),
            failure_.exchange(0, std::memory_order_relaxed)};
  }

  // After an ejection or un-ejection: counting starts over.
  void Reset() {
    errors_.store(0, std::memory_order_relaxed);
    gateway_.store(0, std::memory_order_relaxed);
    local_.store(0, std::memory_order_relaxed);
  }

 private:
  // Increments `counter`; true (and back to 0) when it reaches `threshold`.
  static bool Hit(std::atomic<uint32_t>& counter, uint32_t threshold) {
    if (threshold == 0) return false;
    if (counter.fetch_add(1, std::memory_order_relaxed) + 1 >= threshold) {
      counter.store(0, std::memory_order_relaxed);
      return true;
    }
    return false;
  }

  std::atomic<uint32_t> errors_{0};
  std::atomic<uint32_t> gateway_{0};
  std::atomic<uint32_t> local_{0};
  std::atomic<uint64_t> success_{0};
  std::atomic<uint64_t> failure_{0};
};

// Whether the config can eject anything at all: some consecutive threshold
// (local-origin failures count only when split: unsplit, they feed the
// 5xx and gateway counters), success rate or failure percentage.
inline bool EjectionEnabled(const OutlierConfig& config) {
  return config.consecutive_errors > 0 || config.consecutive_gateway_errors > 0 ||
         (config.split_local_origin && config.consecutive_local_origin_failures > 0) ||
         config.success_rate.has_value() || config.failure_percentage.has_value();
}

// Whether one more of `total` endpoints may be ejected with `ejected`
// already out: at most maxEjectionPercent of them, but always one (Envoy),
// and never below minHealthPercent not ejected.
inline bool MayEject(size_t ejected, size_t total, const OutlierConfig& config) {
  if (ejected >= total) return false;
  if (ejected > 0 && 100 * (ejected + 1) > config.max_ejection_percent * total) return false;
  if (100 * (total - ejected - 1) < static_cast<size_t>(config.min_health_percent) * total) {
    return false;
  }
  return true;
}

// How long the n-th consecutive ejection of an endpoint lasts: base x n,
// at most max(base, maxEjectionTime).
inline int64_t EjectionMs(uint32_t times_ejected, const OutlierConfig& config) {
  const int64_t cap = std::max(config.base_ejection_ms, config.max_ejection_ms);
  const int64_t n = std::max<int64_t>(1, times_ejected);
  if (config.base_ejection_ms > 0 && n > cap / config.base_ejection_ms) return cap;
  return std::min(cap, config.base_ejection_ms * n);
}

// An endpoint at an interval tick.
struct IntervalStats {
  uint64_t success = 0;
  uint64_t failure = 0;
  bool ejected = false;
};

// gRFC A50's interval sweep: the endpoints to eject, in order (success rate
// first, then failure percentage), within the ejection budget. `roll()`
// returns a uniform integer in [0, 100) for the enforcement percentages.
template <typename Roll>
std::vector<size_t> SweepInterval(const std::vector<IntervalStats>& stats,
                                  const OutlierConfig& config, Roll&& roll) {
  std::vector<size_t> out;
  size_t ejected = 0;
  for (const IntervalStats& s : stats) ejected += s.ejected;
  std::vector<bool> taken(stats.size(), false);
  auto volume = [&](size_t i) { return stats[i].success + stats[i].failure; };
  auto try_eject = [&](size_t i, uint32_t enforcement) {
    if (taken[i] || stats[i].ejected) return;
    if (roll() >= enforcement) return;
    if (!MayEject(ejected, stats.size(), config)) return;
    taken[i] = true;
    ++ejected;
    out.push_back(i);
  };
  if (config.success_rate.has_value()) {
    const auto& sr = *config.success_rate;
    std::vector<size_t> candidates;
    for (size_t i = 0; i < stats.size(); ++i) {
      if (!stats[i].ejected && volume(i) >= sr.request_volume) candidates.push_back(i);
    }
    if (!candidates.empty() && candidates.size() >= sr.minimum_hosts) {
      auto rate = [&](size_t i) { return static_cast<double>(stats[i].success) / volume(i); };
      double mean = 0;
      for (size_t i : candidates) mean += rate(i);
      mean /= candidates.size();
      double variance = 0;
      for (size_t i : candidates) variance += (rate(i) - mean) * (rate(i) - mean);
      const double stdev = std::sqrt(variance / candidates.size());
      const double threshold = mean - stdev * (sr.stdev_factor / 1000.0);
      for (size_t i : candidates) {
        if (rate(i) < threshold) try_eject(i, sr.enforcement_percentage);
      }
    }
  }
  if (config.failure_percentage.has_value()) {
    const auto& fp = *config.failure_percentage;
    std::vector<size_t> candidates;
    for (size_t i = 0; i < stats.size(); ++i) {
      if (!stats[i].ejected && volume(i) >= fp.request_volume) candidates.push_back(i);
    }
    if (!candidates.empty() && candidates.size() >= fp.minimum_hosts) {
      for (size_t i : candidates) {
        const double failure_pct = 100.0 * stats[i].failure / volume(i);
        if (failure_pct > fp.threshold) try_eject(i, fp.enforcement_percentage);
      }
    }
  }
  return out;
}

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_OUTLIER_EJECTION_H_
