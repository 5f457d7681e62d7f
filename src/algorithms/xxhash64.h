// XXH64, the hash Envoy's and gRPC's ring hash and Maglev use, from Debian's
// libxxhash-dev, compiled inline (no library to link).

#ifndef LBKIT_ALGORITHMS_XXHASH64_H_
#define LBKIT_ALGORITHMS_XXHASH64_H_

#include <cstdint>
#include <string_view>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace lbkit::algorithms {

inline uint64_t Xxh64(std::string_view data, uint64_t seed = 0) {
  return XXH64(data.data(), data.size(), seed);
}

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_XXHASH64_H_
