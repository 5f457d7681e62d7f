// Round-robin rotation over a fixed set of N choices.
//
// The cursor hands out indices 0..N-1 in turn from a starting offset: any
// N consecutive calls cover every index exactly once when the calls are
// serialised, as gRPC 1.51's channel serialises picks (under its data-plane
// lock). Next() is also safe from several threads at once, without a
// locked instruction (one cost as much as the rest of a pick): two callers
// racing may read the same position and take the same index, a lost step
// that falls on a random index, so the rotation stays even on average
// rather than exactly. The position is 32-bit: after 2^32 picks the
// rotation skips ahead once, by 2^32 mod N places, and goes on evenly.
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
  // `size` must be at least 1 and at most 2^32 - 1 (more is taken as
  // that); `start` is taken modulo `size`. The policy
  // passes a random start so that many clients, each building a picker at
  // the same moment, do not all send their first request to the same
  // endpoint (grpc-go issue 2580).
  RoundRobinCursor(size_t size, size_t start)
      : size_(static_cast<uint32_t>(size == 0 ? 1 : size > UINT32_MAX ? UINT32_MAX : size)),
        inverse_(UINT64_MAX / size_ + 1),
        next_(static_cast<uint32_t>(start % size_)) {}

  RoundRobinCursor(const RoundRobinCursor&) = delete;
  RoundRobinCursor& operator=(const RoundRobinCursor&) = delete;

  size_t size() const { return size_; }

  size_t Next() {
    // ticket mod N without a division (Lemire, Kaser and Kurz, "Faster
    // remainder by direct computation", 2019): a 64-bit division is most of
    // a pick's cost otherwise.
    const uint32_t ticket = next_.load(std::memory_order_relaxed);
    next_.store(ticket + 1, std::memory_order_relaxed);
    const uint64_t low = inverse_ * ticket;
    return static_cast<size_t>((static_cast<unsigned __int128>(low) * size_) >> 64);
  }

 private:
  const uint32_t size_;
  const uint64_t inverse_;  // 2^64 / size_, rounded up
  std::atomic<uint32_t> next_;
};

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_ROUND_ROBIN_H_
