// Round-robin rotation over a fixed set of N choices.
//
// The cursor hands out indices 0..N-1 in turn from a starting offset. It is
// safe to call Next() from several threads at once: each caller takes a
// distinct ticket from one relaxed atomic counter, so any N consecutive
// tickets cover every index exactly once, however the threads interleave.
//
//   lbkit::algorithms::RoundRobinCursor cursor(/*size=*/3, /*start=*/1);
//   cursor.Next();  // 1
//   cursor.Next();  // 2
//   cursor.Next();  // 0
//
// Pure C++, no gRPC: the lbkit_round_robin picker wraps it.

#ifndef LBKIT_ALGORITHMS_ROUND_ROBIN_H_
#define LBKIT_ALGORITHMS_ROUND_ROBIN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace lbkit::algorithms {

class RoundRobinCursor {
 public:
  // `size` must be at least 1; `start` is taken modulo `size`. The policy
  // passes a random start so that many clients, each building a picker at
  // the same moment, do not all send their first request to the same
  // endpoint (grpc-go issue 2580).
  RoundRobinCursor(size_t size, size_t start)
      : size_(size == 0 ? 1 : size), next_(start % size_) {}

  RoundRobinCursor(const RoundRobinCursor&) = delete;
  RoundRobinCursor& operator=(const RoundRobinCursor&) = delete;

  size_t size() const { return size_; }

  size_t Next() {
    // A 64-bit ticket never wraps in practice (2^64 picks), so the modulo
    // stays uniform.
    return static_cast<size_t>(next_.fetch_add(1, std::memory_order_relaxed) %
                               size_);
  }

 private:
  const uint64_t size_;
  std::atomic<uint64_t> next_;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_ROUND_ROBIN_H_
