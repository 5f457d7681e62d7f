// Least-request selection: power of d choices over in-flight requests, with
// Envoy's weighting and an optional peak-EWMA latency cost (Linkerd,
// Finagle). Pure C++, no gRPC; lbkit_least_request wraps it.
//
// Choosing: draw `choice_count` distinct candidates, each with probability
// proportional to its weight (uniformly when the weights are equal), and
// take the one with the lowest cost, the earlier-drawn on a tie:
//  - default: cost = in-flight requests when all weights are equal (the
//    plain P2C of gRFC A48); with unequal weights an idle endpoint costs 0
//    and a busy one (active + 1)^bias / weight, i.e. the inverse of Envoy's
//    effective weight weight / (active + 1)^bias. Drawing by weight makes
//    idle endpoints share traffic in proportion to weight; the formula makes
//    busy ones carry in-flight load in proportion to weight^(1/bias).
//  - peakEwma (Linkerd's cost): cost = EWMA round-trip time * (active + 1)
//    / weight.
//  - latencyEwma (lbkit's): cost = (EWMA round-trip time / weight)^2 *
//    (active + 1), which orders candidates as rtt * sqrt(active + 1) /
//    weight. A measured round-trip time already includes the queueing that
//    the calls in flight cause on a busy server, so counting each of them
//    in full counts that load twice; the square root keeps the in-flight
//    count as the instant signal between two samples without letting it
//    outweigh a latency difference (docs/latency-aware.md).
//
//   LeastRequestChooser chooser({1, 1, 1, 1}, {/*choice_count=*/2, /*bias=*/1.0});
//   size_t i = chooser.Choose([&](size_t j) { return in_flight[j]; },
//                             [&](size_t j) { return 0.0; });

#ifndef LBKIT_ALGORITHMS_LEAST_REQUEST_H_
#define LBKIT_ALGORITHMS_LEAST_REQUEST_H_

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "algorithms/random.h"

namespace lbkit::algorithms {

// Draws indices with probability proportional to integer weights in O(1)
// (Vose's alias method); uniform and table-free when all weights are equal.
class WeightedSampler {
 public:
  explicit WeightedSampler(const std::vector<uint32_t>& weights)
      : n_(weights.size()) {
    bool equal = true;
    for (uint32_t w : weights) equal = equal && w == weights.front();
    if (equal || n_ == 0) return;
    double total = 0;
    for (uint32_t w : weights) total += w;
    std::vector<double> scaled(n_);
    std::vector<size_t> small, large;
    for (size_t i = 0; i < n_; ++i) {
      scaled[i] = static_cast<double>(weights[i]) * static_cast<double>(n_) / total;
      (scaled[i] < 1.0 ? small : large).push_back(i);
    }
    threshold_.assign(n_, UINT64_MAX);
    alias_.resize(n_);
    for (size_t i = 0; i < n_; ++i) alias_[i] = static_cast<uint32_t>(i);
    while (!small.empty() && !large.empty()) {
      const size_t s = small.back(), l = large.back();
      small.pop_back();
      threshold_[s] = ToThreshold(scaled[s]);
      alias_[s] = static_cast<uint32_t>(l);
      scaled[l] -= 1.0 - scaled[s];
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Leftovers are 1 up to rounding: they keep their own index always.
  }

  size_t size() const { return n_; }
  bool uniform() const { return threshold_.empty(); }

  size_t Sample() const {
    const size_t i = UniformIndex(n_);
    if (threshold_.empty()) return i;
    return ThreadRandom() < threshold_[i] ? i : alias_[i];
  }

 private:
  static uint64_t ToThreshold(double p) {
    if (p >= 1.0) return UINT64_MAX;
    return static_cast<uint64_t>(p * 18446744073709551616.0);  // p * 2^64
  }

  size_t n_;
  std::vector<uint64_t> threshold_;  // empty: uniform
  std::vector<uint32_t> alias_;
};

struct LeastRequestOptions {
  int choice_count = 2;            // 2..10
  double active_request_bias = 1.0;  // >= 0
  bool squared_latency = false;    // latencyEwma's cost
};

class LeastRequestChooser {
 public:
  static constexpr int kMaxChoices = 10;

  LeastRequestChooser(const std::vector<uint32_t>& weights,
                      LeastRequestOptions options)
      : sampler_(weights), options_(options) {
    if (options_.choice_count < 2) options_.choice_count = 2;
    if (options_.choice_count > kMaxChoices) options_.choice_count = kMaxChoices;
    inverse_weight_.reserve(weights.size());
    weight_.reserve(weights.size());
    for (uint32_t w : weights) {
      inverse_weight_.push_back(1.0 / (w == 0 ? 1 : w));
      weight_.push_back(w == 0 ? 1 : w);
    }
  }

  size_t size() const { return sampler_.size(); }

  // `in_flight(i)` gives endpoint i's in-flight requests; `ewma_ns(i)` its
  // decayed peak-EWMA round-trip time, or a value <= 0 when not in EWMA
  // mode. Returns the chosen index; size() must be at least 1.
  template <typename InFlight, typename Ewma>
  size_t Choose(InFlight&& in_flight, Ewma&& ewma_ns) const {
    const size_t n = sampler_.size();
    if (n == 1) return 0;
    size_t drawn[kMaxChoices];
    double costs[kMaxChoices];
    const int k = Draw(drawn);
    int best = 0;
    for (int c = 0; c < k; ++c) {
      costs[c] = Cost(drawn[c], in_flight(drawn[c]), ewma_ns(drawn[c]));
      if (costs[c] < costs[best]) best = c;
    }
    if (static_cast<size_t>(k) < n) return drawn[best];
    // Every endpoint was a candidate, in a fixed order after the first: the
    // earliest-drawn rule would favour whoever follows a loaded endpoint.
    // Break the tie among the cheapest by weight instead.
    double tied_weight = 0;
    for (int c = 0; c < k; ++c) {
      if (costs[c] == costs[best]) tied_weight += weight_[drawn[c]];
    }
    double r = static_cast<double>(ThreadRandom() >> 11) * 0x1.0p-53 * tied_weight;
    for (int c = 0; c < k; ++c) {
      if (costs[c] != costs[best]) continue;
      r -= weight_[drawn[c]];
      if (r < 0) return drawn[c];
    }
    return drawn[best];
  }

  // The cost Choose() compares; lower wins.
  double Cost(size_t i, int64_t active, double ewma_ns) const {
    const double a = static_cast<double>(active < 0 ? 0 : active);
    if (ewma_ns > 0) {
      const double latency = ewma_ns * inverse_weight_[i];
      return options_.squared_latency ? latency * latency * (a + 1) : latency * (a + 1);
    }
    if (sampler_.uniform()) return a;
    if (active <= 0) return 0;
    const double bias = options_.active_request_bias;
    const double load = bias == 1.0 ? a + 1 : bias == 0.0 ? 1.0 : std::pow(a + 1, bias);
    return load * inverse_weight_[i];
  }

  // Draws min(choice_count, n) distinct indices into `out`, in draw order;
  // returns how many.
  int Draw(size_t* out) const {
    const size_t n = sampler_.size();
    const int k = static_cast<int>(
        n < static_cast<size_t>(options_.choice_count) ? n : options_.choice_count);
    if (static_cast<size_t>(k) == n) {
      // Every endpoint is a candidate: no draw needed (Choose() breaks ties
      // by weight).
      const size_t start = sampler_.Sample();
      for (int c = 0; c < k; ++c) out[c] = (start + c) % n;
      return k;
    }
    int got = 0;
    // Rejection of repeats: with k <= 10 < n and uniform draws this takes
    // about k draws. A sampler dominated by a few heavy weights may repeat
    // them often, so the attempts are bounded and the choice is then made
    // among the distinct candidates found.
    for (int attempt = 0; got < k && attempt < 8 * kMaxChoices; ++attempt) {
      const size_t i = sampler_.Sample();
      bool seen = false;
      for (int c = 0; c < got; ++c) seen = seen || out[c] == i;
      if (!seen) out[got++] = i;
    }
    return got;
  }

 private:
  WeightedSampler sampler_;
  LeastRequestOptions options_;
  std::vector<double> inverse_weight_;
  std::vector<double> weight_;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_LEAST_REQUEST_H_
