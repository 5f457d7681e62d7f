// nginx's smooth weighted round robin, unrolled into a table: over every
// cycle of sum(weights) picks each item is chosen exactly weight times, and
// the choices are interleaved (weights 5, 1, 1 give a a b a c a a), so a
// short run of calls already follows the weights. Pickers index the table
// with an atomic ticket: lock-free.
//
//   std::vector<uint32_t> table = SmoothWrrTable({90, 10});
//   size_t item = table[ticket++ % table.size()];

#ifndef LBKIT_ALGORITHMS_SMOOTH_WRR_H_
#define LBKIT_ALGORITHMS_SMOOTH_WRR_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

namespace lbkit::algorithms {

// `weights` (0 = never chosen; at least one > 0). A sum above `max_cycle` is
// scaled down first, keeping every non-zero weight at least 1, so the table
// stays small; the shares are then exact to within 1 / max_cycle.
inline std::vector<uint32_t> SmoothWrrTable(std::vector<uint64_t> weights,
                                            uint64_t max_cycle = 10000) {
  uint64_t g = 0;
  for (uint64_t w : weights) g = std::gcd(g, w);
  uint64_t sum = 0;
  for (uint64_t& w : weights) {
    if (g > 1) w /= g;
    sum += w;
  }
  if (sum > max_cycle) {
    const double scale = static_cast<double>(max_cycle) / static_cast<double>(sum);
    sum = 0;
    for (uint64_t& w : weights) {
      if (w > 0) w = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(w) * scale));
      sum += w;
    }
  }
  std::vector<uint32_t> table;
  table.reserve(sum);
  std::vector<int64_t> current(weights.size(), 0);
  for (uint64_t n = 0; n < sum; ++n) {
    size_t best = 0;
    bool found = false;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (weights[i] == 0) continue;
      current[i] += static_cast<int64_t>(weights[i]);
      if (!found || current[i] > current[best]) {
        best = i;
        found = true;
      }
    }
    current[best] -= static_cast<int64_t>(sum);
    table.push_back(static_cast<uint32_t>(best));
  }
  return table;
}

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_SMOOTH_WRR_H_
