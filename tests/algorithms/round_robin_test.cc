#include "algorithms/round_robin.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace lbkit::algorithms {
namespace {

TEST(RoundRobinCursor, RotatesFromTheStartOffset) {
  struct Case {
    size_t size, start;
    std::vector<size_t> expected;
  };
  const Case cases[] = {
      {1, 0, {0, 0, 0}},
      {3, 0, {0, 1, 2, 0, 1}},
      {3, 1, {1, 2, 0, 1}},
      {3, 5, {2, 0, 1, 2}},  // start is taken modulo size
      {4, 3, {3, 0, 1, 2, 3}},
  };
  for (const Case& c : cases) {
    RoundRobinCursor cursor(c.size, c.start);
    std::vector<size_t> got;
    for (size_t i = 0; i < c.expected.size(); ++i) got.push_back(cursor.Next());
    EXPECT_EQ(got, c.expected) << "size " << c.size << " start " << c.start;
  }
}

TEST(RoundRobinCursor, EveryWindowOfSizeCoversEachIndexOnce) {
  RoundRobinCursor cursor(7, 4);
  for (int window = 0; window < 50; ++window) {
    std::vector<int> seen(7, 0);
    for (int i = 0; i < 7; ++i) ++seen[cursor.Next()];
    for (int s : seen) ASSERT_EQ(s, 1);
  }
}

// Concurrent callers may race on the position (no locked instruction):
// every index stays in range and the rotation stays even on average. Runs
// under ThreadSanitizer too.
TEST(RoundRobinCursor, ConcurrentPicksStayInRangeAndEven) {
  constexpr size_t kSize = 5;
  constexpr int kThreads = 4;
  constexpr int kPicksPerThread = 50000;
  RoundRobinCursor cursor(kSize, 2);
  std::vector<std::vector<int>> counts(kThreads, std::vector<int>(kSize, 0));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPicksPerThread; ++i) {
        const size_t index = cursor.Next();
        ASSERT_LT(index, kSize);
        ++counts[t][index];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < kSize; ++i) {
    int total = 0;
    for (int t = 0; t < kThreads; ++t) total += counts[t][i];
    EXPECT_NEAR(total, kThreads * kPicksPerThread / static_cast<int>(kSize),
                kThreads * kPicksPerThread / 20)
        << "index " << i;
  }
}

// The division-free remainder is the remainder, for sizes up to 2^32 - 1.
TEST(RoundRobinCursor, LargeSizesRotateExactly) {
  for (size_t size : {size_t{2}, size_t{1000}, size_t{65537}, size_t{1} << 31,
                      (size_t{1} << 32) - 1}) {
    const size_t start = size / 2 + 1;
    RoundRobinCursor cursor(size, start);
    for (size_t i = 0; i < 6; ++i) ASSERT_EQ(cursor.Next(), (start + i) % size) << size;
  }
}

}  // namespace
}  // namespace lbkit::algorithms
