// The consistent-hash ring of Envoy's and gRPC's ring_hash (they build the
// same ring), so that a key lands on the same endpoint as under Envoy with
// the same endpoints and ring size.
//
// Build, for endpoints i with keys k_i ("ip:port" as Envoy prints it) and
// weights w_i:
//   n_i = w_i / sum(w); m = min(n_i)
//   scale = min(ceil(m * min_size) / m, max_size)
//   cur = target = 0
//   for i in order: target += scale * n_i; j = 0
//     while cur < target: add (XXH64(k_i + "_" + j), i); j++; cur++
//   sort by hash
// so the least-weighted endpoint gets a whole number of entries. Lookup of a
// request hash h: the first entry with hash >= h, wrapping to the first.
//
//   HashRing ring = HashRing::Build({"10.0.0.1:80", "10.0.0.2:80"}, {1, 1}, 1024, 4096);
//   uint32_t endpoint = ring.entry(ring.Find(Xxh64("user-42"))).endpoint;

#ifndef LBKIT_ALGORITHMS_RING_HASH_H_
#define LBKIT_ALGORITHMS_RING_HASH_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "algorithms/xxhash64.h"

namespace lbkit::algorithms {

class HashRing {
 public:
  struct Entry {
    uint64_t hash;
    uint32_t endpoint;
  };

  static HashRing Build(const std::vector<std::string>& keys,
                        const std::vector<uint32_t>& weights, uint64_t min_size,
                        uint64_t max_size) {
    if (keys.empty()) return HashRing();
    double total = 0;
    for (uint32_t w : weights) total += Weight(w);
    double min_share = 1.0;
    for (uint32_t w : weights) min_share = std::min(min_share, Weight(w) / total);
    const double scale = std::min(std::ceil(min_share * static_cast<double>(min_size)) / min_share,
                                  static_cast<double>(max_size));
    // Envoy's cumulative rounding, entry by entry: the counts of the
    // endpoints depend on their order, exactly as in Envoy.
    std::vector<uint64_t> counts(keys.size(), 0);
    double current = 0, target = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      target += scale * (Weight(weights[i]) / total);
      for (; current < target; ++current) ++counts[i];
    }
    return Fill(keys, counts);
  }

  // A ring whose endpoints get `entries_per_weight` x weight entries each,
  // however many endpoints there are: adding or removing one moves only the
  // keys it takes or had, none between the others (Envoy's scaling above
  // gives every endpoint more or fewer entries when the count changes, which
  // moves some keys between survivors too). Scaled down proportionally if
  // the total would exceed `max_size`.
  static HashRing BuildFixed(const std::vector<std::string>& keys,
                             const std::vector<uint32_t>& weights,
                             uint64_t entries_per_weight, uint64_t max_size) {
    double total = 0;
    for (uint32_t w : weights) total += Weight(w) * static_cast<double>(entries_per_weight);
    const double shrink = total > static_cast<double>(max_size) ? max_size / total : 1.0;
    std::vector<uint64_t> counts;
    for (uint32_t w : weights) {
      counts.push_back(std::max<uint64_t>(
          1, static_cast<uint64_t>(Weight(w) * static_cast<double>(entries_per_weight) * shrink)));
    }
    return Fill(keys, counts);
  }

  size_t size() const { return entries_.size(); }
  const Entry& entry(size_t index) const { return entries_[index]; }
  const std::vector<Entry>& entries() const { return entries_; }

  // Index of the first entry with hash >= h, wrapping to 0. size() >= 1.
  size_t Find(uint64_t h) const {
    // A branchless lower bound over a dense copy of the hashes: a random
    // request hash makes every branch of std::lower_bound a coin toss, and
    // the mispredictions were most of a pick's cost (62 ns at 2,000
    // entries). The conditional move below has nothing to mispredict.
    const uint64_t* base = hashes_.data();
    size_t n = hashes_.size();
    while (n > 1) {
      const size_t half = n / 2;
      base = base[half] < h ? base + half : base;
      n -= half;
    }
    const size_t index = static_cast<size_t>(base - hashes_.data()) + (*base < h);
    return index == hashes_.size() ? 0 : index;
  }

 private:
  static double Weight(uint32_t w) { return w == 0 ? 1.0 : w; }

  // Entries XXH64("<key>_<j>") for j < counts[i], sorted by hash.
  static HashRing Fill(const std::vector<std::string>& keys,
                       const std::vector<uint64_t>& counts) {
    HashRing ring;
    uint64_t total = 0;
    for (uint64_t c : counts) total += c;
    ring.entries_.reserve(total);
    std::string buffer;
    for (size_t i = 0; i < keys.size(); ++i) {
      for (uint64_t j = 0; j < counts[i]; ++j) {
        buffer.assign(keys[i]).append("_").append(std::to_string(j));
        ring.entries_.push_back({Xxh64(buffer), static_cast<uint32_t>(i)});
      }
    }
    // Ties (equal hashes) keep endpoint order, as a stable sort does in
    // Envoy, so the result does not depend on the sort implementation.
    std::stable_sort(ring.entries_.begin(), ring.entries_.end(),
                     [](const Entry& a, const Entry& b) { return a.hash < b.hash; });
    ring.hashes_.reserve(ring.entries_.size());
    for (const Entry& e : ring.entries_) ring.hashes_.push_back(e.hash);
    return ring;
  }

  std::vector<Entry> entries_;
  std::vector<uint64_t> hashes_;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_RING_HASH_H_
