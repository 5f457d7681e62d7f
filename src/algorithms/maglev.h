// Maglev lookup table (Eisenbud et al., NSDI 2016, section 3.4), weighted as
// Envoy's maglev load balancer does.
//
// Table size M is prime. Endpoints are taken in order of their key. Per
// endpoint: offset = XXH64(key, 0) % M, skip = XXH64(key, 1) % (M - 1) + 1,
// next = 0, target = 0. Rounds it = 1, 2, ... visit the endpoints in order;
// an endpoint with weight w takes a turn when it * w >= target (then target
// += max weight): it claims its next preferred slot (offset + skip * next) % M
// that is still free. Until all M slots are filled. Equal weights give each
// endpoint M/N slots, +-1. A request hash h picks table[h % M].
//
//   MaglevTable table = MaglevTable::Build({"10.0.0.1:80", "10.0.0.2:80"}, {1, 1}, 65537);
//   uint32_t endpoint = table.Pick(Xxh64("user-42"));

#ifndef LBKIT_ALGORITHMS_MAGLEV_H_
#define LBKIT_ALGORITHMS_MAGLEV_H_

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "algorithms/xxhash64.h"

namespace lbkit::algorithms {

class MaglevTable {
 public:
  static constexpr uint64_t kDefaultSize = 65537;
  static constexpr uint64_t kMaxSize = 5000011;

  static bool IsPrime(uint64_t n) {
    if (n < 2) return false;
    for (uint64_t d = 2; d * d <= n; ++d) {
      if (n % d == 0) return false;
    }
    return true;
  }

  // The permutation parameters of one endpoint key.
  static uint64_t Offset(const std::string& key, uint64_t size) { return Xxh64(key, 0) % size; }
  static uint64_t Skip(const std::string& key, uint64_t size) {
    return Xxh64(key, 1) % (size - 1) + 1;
  }

  // `size` must be prime (the caller validates it); keys non-empty.
  static MaglevTable Build(const std::vector<std::string>& keys,
                           const std::vector<uint32_t>& weights, uint64_t size) {
    MaglevTable table;
    if (keys.empty()) return table;
    std::vector<size_t> order(keys.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return keys[a] < keys[b]; });
    struct Perm {
      uint64_t offset, skip, next = 0;
      double target = 0;
      uint32_t weight;
      uint32_t endpoint;
    };
    std::vector<Perm> perms;
    uint32_t max_weight = 0;
    for (size_t i : order) {
      const uint32_t w = weights[i] == 0 ? 1 : weights[i];
      max_weight = std::max(max_weight, w);
      perms.push_back({Offset(keys[i], size), Skip(keys[i], size), 0, 0, w,
                       static_cast<uint32_t>(i)});
    }
    constexpr uint32_t kEmpty = UINT32_MAX;
    table.slots_.assign(size, kEmpty);
    uint64_t filled = 0;
    for (uint64_t iteration = 1; filled < size; ++iteration) {
      for (Perm& p : perms) {
        if (filled == size) break;
        if (static_cast<double>(iteration) * p.weight < p.target) continue;
        p.target += max_weight;
        uint64_t slot = (p.offset + p.skip * p.next) % size;
        while (table.slots_[slot] != kEmpty) {
          ++p.next;
          slot = (p.offset + p.skip * p.next) % size;
        }
        table.slots_[slot] = p.endpoint;
        ++p.next;
        ++filled;
      }
    }
    return table;
  }

  size_t size() const { return slots_.size(); }
  uint32_t Pick(uint64_t hash) const { return slots_[hash % slots_.size()]; }
  const std::vector<uint32_t>& slots() const { return slots_; }

 private:
  std::vector<uint32_t> slots_;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_MAGLEV_H_
