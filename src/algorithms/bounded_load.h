// Consistent hashing with bounded loads, as Envoy's `hash_balance_factor`
// (Mirrokni, Thorup, Zadimoghaddam, arXiv:1608.01350, with the random jump of
// arXiv:1908.08762 instead of walking the ring).
//
// With factor f (percent, >= 100) and A calls in flight across the cluster, an
// endpoint of normalized weight w has
//     slots = max(1, ceil(ceil((A + 1) * f / 100) * w))
// and takes the call if it then has at most `slots` in flight. Otherwise the
// other candidates are tried in a pseudo-random order seeded by the request
// hash (Fisher-Yates over std::mt19937(hash), exactly Envoy's sequence), so a
// key that overflows always spills to the same alternates: cache locality
// degrades gracefully instead of scattering. If every candidate is over its
// bound, the least loaded relative to its slots takes the call.
//
// Deliberately one call stricter than Envoy, which admits an endpoint while
// its count *before* the call is <= slots and so lets it reach slots + 1:
// here no endpoint exceeds factor/100 x its share (rounded up), which is
// the bound users configure. The key -> endpoint mapping and the spill order
// are Envoy's.
//
//   BoundedLoad bounded(125, {1, 1, 1});          // factor 1.25, three equal
//   size_t i = bounded.Choose(hash, first, total_in_flight,
//                             [&](size_t c) { return in_flight[c]; });

#ifndef LBKIT_ALGORITHMS_BOUNDED_LOAD_H_
#define LBKIT_ALGORITHMS_BOUNDED_LOAD_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

namespace lbkit::algorithms {

class BoundedLoad {
 public:
  // `weights` of the candidates (the endpoints that may take calls now), in
  // the candidate order Choose() uses; normalized here.
  BoundedLoad(uint32_t factor_percent, const std::vector<uint32_t>& weights)
      : factor_(factor_percent) {
    const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    normalized_.reserve(weights.size());
    for (uint32_t w : weights) normalized_.push_back(total > 0 ? w / total : 0.0);
  }

  size_t size() const { return normalized_.size(); }

  // How many calls an endpoint of normalized `weight` may have in flight.
  static uint64_t Slots(uint64_t total_in_flight, uint32_t factor_percent, double weight) {
    const uint64_t total_slots = ((total_in_flight + 1) * factor_percent + 99) / 100;
    return std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(total_slots * weight)));
  }

  // The candidate to take a call whose hash landed on candidate `first`.
  // `in_flight(c)` is candidate c's current count; `total_in_flight` the
  // cluster's. O(1) unless `first` is over its bound, then O(candidates).
  template <typename InFlight>
  size_t Choose(uint64_t hash, size_t first, uint64_t total_in_flight,
                InFlight&& in_flight) const {
    double least_overload = Overload(first, total_in_flight, in_flight(first));
    if (least_overload <= 1.0) return first;
    size_t least_loaded = first;

    const uint32_t n = static_cast<uint32_t>(normalized_.size());
    // Reused per thread: an overflowing pick allocates nothing after the
    // first one on a thread.
    thread_local std::vector<uint32_t> order;
    order.resize(n);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937 random(hash);  // Envoy seeds with the hash; same sequence
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t j = UniformBelow(random, n - i);
      std::swap(order[i], order[i + j]);
      const size_t c = order[i];
      if (c == first) continue;
      const double overload = Overload(c, total_in_flight, in_flight(c));
      if (overload <= 1.0) return c;
      if (overload < least_overload) {
        least_overload = overload;
        least_loaded = c;
      }
    }
    return least_loaded;
  }

 private:
  // The endpoint's load relative to its bound if it took the call.
  double Overload(size_t c, uint64_t total_in_flight, int64_t in_flight) const {
    const uint64_t slots = Slots(total_in_flight, factor_, normalized_[c]);
    return static_cast<double>(std::max<int64_t>(in_flight, 0) + 1) / static_cast<double>(slots);
  }

  // Uniform in [0, k) by rejection, Envoy's formula (not
  // std::uniform_int_distribution, whose sequence differs between standard
  // libraries).
  static uint32_t UniformBelow(std::mt19937& random, uint32_t k) {
    const uint64_t bucket = (static_cast<uint64_t>(std::mt19937::max()) + 1u) / k;
    uint32_t x = k;
    while (x >= k) x = static_cast<uint32_t>(random() / bucket);
    return x;
  }

  const uint32_t factor_;
  std::vector<double> normalized_;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_BOUNDED_LOAD_H_
