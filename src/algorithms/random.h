// A fast per-thread random source for pickers.
//
// Pickers run on every RPC from many threads, so they need a generator with
// no shared state (no lock, no contended cache line) and a cost of a few
// cycles. Each thread gets its own xoshiro256** state, seeded once from
// std::random_device; tests make a thread's sequence reproducible with
// SeedThreadRandom().
//
//   uint64_t r = lbkit::algorithms::ThreadRandom();
//   size_t i = lbkit::algorithms::UniformIndex(n);  // in [0, n)

#ifndef LBKIT_ALGORITHMS_RANDOM_H_
#define LBKIT_ALGORITHMS_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <random>

namespace lbkit::algorithms {

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) { Seed(seed); }

  void Seed(uint64_t seed) {
    // splitmix64 spreads any seed, including 0, over the whole state.
    for (uint64_t& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

inline Xoshiro256& ThreadGenerator() {
  thread_local Xoshiro256 generator(
      (static_cast<uint64_t>(std::random_device{}()) << 32) ^
      std::random_device{}());
  return generator;
}

inline uint64_t ThreadRandom() { return ThreadGenerator().Next(); }

// Makes this thread's sequence reproducible (tests).
inline void SeedThreadRandom(uint64_t seed) { ThreadGenerator().Seed(seed); }

// Uniform in [0, n), n >= 1: Lemire's multiply-shift, without the division
// a modulo would cost; the bias is below n / 2^64.
inline size_t UniformIndex(size_t n) {
  return static_cast<size_t>(
      (static_cast<unsigned __int128>(ThreadRandom()) * n) >> 64);
}

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_RANDOM_H_
