#include "common/fast_clock.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <mutex>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace lbkit::internal {

std::atomic<double> cycle_ns_per_tick{0};
std::atomic<bool> cycle_clock_uses_tsc{false};

int64_t SteadyNowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

bool InvariantTsc() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000007) return false;
  __cpuid(0x80000007, eax, ebx, ecx, edx);
  return (edx & (1u << 8)) != 0;  // "TscInvariant": constant rate in every P/C-state
#else
  return false;
#endif
}

#if defined(__x86_64__)
// A steady-clock reading and the TSC at the same moment: the TSC read on
// both sides, retried until the two are close (a preemption between them
// would pair a time with the wrong count).
bool PairedReading(int64_t* ns, uint64_t* tsc) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint64_t before = __rdtsc();
    const int64_t t = SteadyNowNanos();
    const uint64_t after = __rdtsc();
    if (after > before && after - before < 20000) {  // ~10 us at 2 GHz
      *ns = t;
      *tsc = before + (after - before) / 2;
      return true;
    }
  }
  return false;
}

// Nanoseconds per tick over one 2 ms window, or 0.
double MeasureTscRate() {
  int64_t t0, t1;
  uint64_t c0, c1;
  if (!PairedReading(&t0, &c0)) return 0;
  do {
    if (!PairedReading(&t1, &c1)) return 0;
  } while (t1 - t0 < 2000000);
  return c1 > c0 ? static_cast<double>(t1 - t0) / static_cast<double>(c1 - c0) : 0;
}
#endif

}  // namespace

void CalibrateCycleClock() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__x86_64__)
    if (InvariantTsc()) {
      double rates[3];
      for (double& rate : rates) rate = MeasureTscRate();
      std::sort(std::begin(rates), std::end(rates));
      const double rate = rates[1];  // the median: one preempted window does not count
      if (rate >= 0.05 && rate <= 20) {  // a 50 MHz to 20 GHz counter
        cycle_clock_uses_tsc.store(true, std::memory_order_relaxed);
        cycle_ns_per_tick.store(rate, std::memory_order_release);
        return;
      }
    }
#endif
    cycle_ns_per_tick.store(1.0, std::memory_order_release);
  });
}

}  // namespace lbkit::internal
