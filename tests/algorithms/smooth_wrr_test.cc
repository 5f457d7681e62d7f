#include "algorithms/smooth_wrr.h"

#include <map>

#include "gtest/gtest.h"

namespace lbkit::algorithms {
namespace {

TEST(SmoothWrr, NginxExample) {
  // nginx's smooth weighted round robin (ngx_http_upstream_round_robin.c): {5, 1, 1} -> a a b a c a a.
  EXPECT_EQ(SmoothWrrTable({5, 1, 1}), (std::vector<uint32_t>{0, 0, 1, 0, 2, 0, 0}));
}

TEST(SmoothWrr, ExactSharesPerCycleAndZeroWeights) {
  const auto table = SmoothWrrTable({90, 0, 10});
  ASSERT_EQ(table.size(), 10u);  // divided by the gcd
  std::map<uint32_t, int> count;
  for (uint32_t i : table) ++count[i];
  EXPECT_EQ(count[0], 9);
  EXPECT_EQ(count[2], 1);
  EXPECT_EQ(count.count(1), 0u);
}

TEST(SmoothWrr, LargeSumsAreScaledDown) {
  const auto table = SmoothWrrTable({1000000, 1}, 1000);
  EXPECT_LE(table.size(), 1001u);
  std::map<uint32_t, int> count;
  for (uint32_t i : table) ++count[i];
  EXPECT_EQ(count[1], 1);  // never scaled to nothing
}

}  // namespace
}  // namespace lbkit::algorithms
