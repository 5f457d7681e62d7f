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

// Concurrent callers take distinct tickets: the totals are exact whatever the
// interleaving. Runs under ThreadSanitizer too.
TEST(RoundRobinCursor, ConcurrentPicksStayExactlyEven) {
  constexpr size_t kSize = 5;
  constexpr int kThreads = 4;
  constexpr int kPicksPerThread = 50000;  // kThreads * this divisible by kSize
  RoundRobinCursor cursor(kSize, 2);
  std::vector<std::vector<int>> counts(kThreads, std::vector<int>(kSize, 0));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPicksPerThread; ++i) ++counts[t][cursor.Next()];
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < kSize; ++i) {
    int total = 0;
    for (int t = 0; t < kThreads; ++t) total += counts[t][i];
    EXPECT_EQ(total, kThreads * kPicksPerThread / static_cast<int>(kSize))
        << "index " << i;
  }
}

}  // namespace
}  // namespace lbkit::algorithms
