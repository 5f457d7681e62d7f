#include "common/fast_clock.h"

#include <chrono>
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

}  // namespace

void CalibrateCycleClock() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__x86_64__)
    if (InvariantTsc()) {
      // 2 ms against the steady clock: its ~30 ns read jitter is a 2e-5
      // error in the rate, well below what a latency histogram resolves.
      const int64_t t0 = SteadyNowNanos();
      const uint64_t c0 = __rdtsc();
      int64_t t1;
      do {
        t1 = SteadyNowNanos();
      } while (t1 - t0 < 2000000);
      const uint64_t c1 = __rdtsc();
      if (c1 > c0) {
        cycle_clock_uses_tsc.store(true, std::memory_order_relaxed);
        cycle_ns_per_tick.store(static_cast<double>(t1 - t0) / static_cast<double>(c1 - c0),
                                std::memory_order_release);
        return;
      }
    }
#endif
    cycle_ns_per_tick.store(1.0, std::memory_order_release);
  });
}

}  // namespace lbkit::internal
