#include "common/fast_clock.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "gtest/gtest.h"

namespace lbkit::internal {
namespace {

// The calibrated counter measures an interval as the steady clock does.
// Each counter read is bracketed by two steady reads, so the check holds
// however long the thread is preempted on a loaded machine: the cycles
// must lie between the inner and the outer steady interval, within 2%.
TEST(CycleClock, MeasuresWhatTheSteadyClockMeasures) {
  CalibrateCycleClock();
  const int64_t t0_before = SteadyNowNanos();
  const uint64_t c0 = CycleNow();
  const int64_t t0_after = SteadyNowNanos();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int64_t t1_before = SteadyNowNanos();
  const uint64_t c1 = CycleNow();
  const int64_t t1_after = SteadyNowNanos();
  const auto measured = static_cast<double>(CyclesBetween(c0, c1));
  EXPECT_GE(measured, 0.98 * static_cast<double>(t1_before - t0_after))
      << "cycle clock uses the TSC: " << cycle_clock_uses_tsc.load();
  EXPECT_LE(measured, 1.02 * static_cast<double>(t1_after - t0_before))
      << "cycle clock uses the TSC: " << cycle_clock_uses_tsc.load();
}

// Reads from two CPUs whose counters differ slightly may go backwards: a
// duration is then 0, never a huge or negative number.
TEST(CycleClock, AnEndBeforeTheStartIsNoTime) {
  const uint64_t now = CycleNow();
  EXPECT_EQ(CyclesBetween(now + 1000, now), 0);
  EXPECT_EQ(CyclesBetween(now, now), 0);
}

// The coarse clock reads CLOCK_MONOTONIC truncated to a tick (1 to 4 ms):
// never ahead of a steady read after it, and at most a tick (50 ms
// allowed) behind one before it.
TEST(CoarseClock, SharesTheSteadyClocksTimebase) {
  const int64_t before = SteadyNowNanos();
  const int64_t coarse = CoarseNowNanos();
  const int64_t after = SteadyNowNanos();
  EXPECT_LE(coarse, after);
  EXPECT_GE(coarse, before - 50'000'000);
}

}  // namespace
}  // namespace lbkit::internal
