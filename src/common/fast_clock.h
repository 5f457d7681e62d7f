// Clocks for the call path, cheaper than std::chrono::steady_clock (28 ns a
// read on the project's KVM machines, whose clock source is kvm-clock):
//
//  - CycleNow() / CyclesBetween(): the CPU's time-stamp counter (12 ns a
//    read), for the duration of a call. Used only where the TSC is
//    invariant (CPUID says so); elsewhere, and on other architectures, the
//    "cycles" are steady-clock nanoseconds. The rate is calibrated once
//    against the steady clock (CalibrateCycleClock(), three 2 ms windows,
//    the median kept; RegisterAll() runs it so no call pays for it); a
//    rate outside 0.05 to 20 ns a tick falls back to the steady clock.
//  - CoarseNowNanos(): CLOCK_MONOTONIC_COARSE (4 ns a read, resolution one
//    kernel tick, 1 to 4 ms), for decaying an estimate over seconds. It
//    shares CLOCK_MONOTONIC's timebase, so it may be compared with
//    steady-clock stamps (it lags them by up to a tick).
//
//   const uint64_t start = internal::CycleNow();
//   ... the call ...
//   const int64_t ns = internal::CyclesBetween(start, internal::CycleNow());

#ifndef LBKIT_COMMON_FAST_CLOCK_H_
#define LBKIT_COMMON_FAST_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <ctime>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace lbkit::internal {

// How cycles become nanoseconds: 0 until calibrated; 1.0 when "cycles" are
// steady-clock nanoseconds already.
extern std::atomic<double> cycle_ns_per_tick;
// Whether CycleNow() reads the TSC (decided at calibration).
extern std::atomic<bool> cycle_clock_uses_tsc;

void CalibrateCycleClock();
int64_t SteadyNowNanos();

// The rate is published last, with release: whoever sees it sees which
// counter it scales.
inline uint64_t CycleNow() {
  if (cycle_ns_per_tick.load(std::memory_order_acquire) == 0) CalibrateCycleClock();
#if defined(__x86_64__)
  if (cycle_clock_uses_tsc.load(std::memory_order_relaxed)) return __rdtsc();
#endif
  return static_cast<uint64_t>(SteadyNowNanos());
}

// Nanoseconds from CycleNow() reading `start` to `end`; 0 if `end` is
// earlier (the two reads may come from CPUs whose counters differ slightly).
inline int64_t CyclesBetween(uint64_t start, uint64_t end) {
  double scale = cycle_ns_per_tick.load(std::memory_order_acquire);
  if (scale == 0) {
    CalibrateCycleClock();
    scale = cycle_ns_per_tick.load(std::memory_order_acquire);
  }
  const auto cycles = static_cast<int64_t>(end - start);
  return cycles <= 0 ? 0 : static_cast<int64_t>(static_cast<double>(cycles) * scale);
}

inline int64_t CoarseNowNanos() {
  timespec ts;
#if defined(CLOCK_MONOTONIC_COARSE)
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace lbkit::internal

#endif  // LBKIT_COMMON_FAST_CLOCK_H_
