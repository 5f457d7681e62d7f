// Quality of the consistent-hash structures, measured exactly rather than
// timed: how many keys move when one endpoint is added or removed (against
// the ideal 1/N, and how many of them move between endpoints that stayed),
// how evenly the key space is spread, and how well hashBalanceFactor bounds
// the load of a skewed key distribution.
//
//   lbkit_hash_quality [--keys=100000] [--out=hash_quality.json]
//
// benchmarks/run_micro.sh runs it and render_results.py puts the table in
// RESULTS.md. Endpoint i is "10.0.<i/256>.<i%256>:50051", key k "user-<k>".

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/bounded_load.h"
#include "algorithms/maglev.h"
#include "algorithms/ring_hash.h"
#include "algorithms/xxhash64.h"

namespace {

using lbkit::algorithms::BoundedLoad;
using lbkit::algorithms::HashRing;
using lbkit::algorithms::MaglevTable;
using lbkit::algorithms::Xxh64;

// A built structure: maps a hash to an endpoint index, and reports each
// endpoint's exact share of the 64-bit hash space.
struct Structure {
  std::function<uint32_t(uint64_t)> owner;
  std::vector<double> share;
};

struct Kind {
  std::string name;
  std::function<Structure(const std::vector<std::string>&)> build;
};

Structure FromRing(HashRing ring, size_t endpoints) {
  auto shared = std::make_shared<HashRing>(std::move(ring));
  Structure s;
  s.owner = [shared](uint64_t h) { return shared->entry(shared->Find(h)).endpoint; };
  s.share.assign(endpoints, 0.0);
  // Entry i owns the arc (previous hash, its hash]; the first also owns the
  // wrap-around arc past the last.
  const auto& entries = shared->entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const uint64_t from = i == 0 ? entries.back().hash : entries[i - 1].hash;
    const uint64_t arc = entries[i].hash - from;  // wraps modulo 2^64 for i == 0
    s.share[entries[i].endpoint] += static_cast<double>(arc) / 18446744073709551616.0;
  }
  return s;
}

Structure FromMaglev(MaglevTable table, size_t endpoints) {
  auto shared = std::make_shared<MaglevTable>(std::move(table));
  Structure s;
  s.owner = [shared](uint64_t h) { return shared->slots()[h % shared->size()]; };
  s.share.assign(endpoints, 0.0);
  for (uint32_t e : shared->slots()) s.share[e] += 1.0 / static_cast<double>(shared->size());
  return s;
}

std::vector<Kind> Kinds() {
  auto ring = [](uint64_t min, uint64_t max) {
    return [min, max](const std::vector<std::string>& keys) {
      return FromRing(HashRing::Build(keys, std::vector<uint32_t>(keys.size(), 1), min, max),
                      keys.size());
    };
  };
  auto maglev = [](uint64_t size) {
    return [size](const std::vector<std::string>& keys) {
      return FromMaglev(
          MaglevTable::Build(keys, std::vector<uint32_t>(keys.size(), 1), size), keys.size());
    };
  };
  return {
      {"ring_hash (default 1024..4096)", ring(1024, 4096)},
      {"ring_hash (64K: min = max = 65536)", ring(65536, 65536)},
      {"ring_hash (fixedEntriesPerWeight 1024)",
       [](const std::vector<std::string>& keys) {
         return FromRing(
             HashRing::BuildFixed(keys, std::vector<uint32_t>(keys.size(), 1), 1024, 8388608),
             keys.size());
       }},
      {"maglev (65537)", maglev(65537)},
      {"maglev (655373)", maglev(655373)},
  };
}

std::string EndpointKey(size_t i) {
  return "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":50051";
}

struct Movement {
  double moved = 0;             // fraction of keys
  double between_survivors = 0;  // fraction of keys moved between endpoints in both sets
};

// Keys' owners before and after, by endpoint name.
Movement Compare(const std::vector<uint64_t>& hashes, const std::vector<std::string>& before_keys,
                 const Structure& before, const std::vector<std::string>& after_keys,
                 const Structure& after) {
  std::map<std::string, bool> in_after;
  for (const auto& k : after_keys) in_after[k] = true;
  std::map<std::string, bool> in_before;
  for (const auto& k : before_keys) in_before[k] = true;
  size_t moved = 0, between = 0;
  for (uint64_t h : hashes) {
    const std::string& was = before_keys[before.owner(h)];
    const std::string& now = after_keys[after.owner(h)];
    if (was == now) continue;
    ++moved;
    if (in_after.count(was) && in_before.count(now)) ++between;
  }
  return {static_cast<double>(moved) / hashes.size(),
          static_cast<double>(between) / hashes.size()};
}

// Steady state with `concurrency` calls in flight, keys drawn from a Zipf
// distribution over 1000 keys (s = 1): the peak in-flight count of any
// endpoint over the mean, without and with a bound.
std::pair<double, double> Skewed(const Structure& s, size_t endpoints, int concurrency,
                                 uint32_t factor) {
  const BoundedLoad bounded(factor, std::vector<uint32_t>(endpoints, 1));
  std::vector<double> zipf_weights;
  for (int k = 1; k <= 1000; ++k) zipf_weights.push_back(1.0 / k);
  double out[2] = {0, 0};
  for (int bound = 0; bound < 2; ++bound) {
    std::mt19937_64 random(1234);
    std::discrete_distribution<int> zipf(zipf_weights.begin(), zipf_weights.end());
    std::vector<int64_t> in_flight(endpoints, 0);
    std::vector<uint32_t> calls;
    int64_t peak = 0;
    for (int step = 0; step < 20 * concurrency; ++step) {
      if (static_cast<int>(calls.size()) == concurrency) {
        const size_t done = random() % calls.size();
        --in_flight[calls[done]];
        calls[done] = calls.back();
        calls.pop_back();
      }
      const uint64_t hash = Xxh64("user-" + std::to_string(zipf(random)));
      uint32_t e = s.owner(hash);
      if (bound) {
        e = static_cast<uint32_t>(bounded.Choose(hash, e, calls.size(),
                                                 [&](size_t c) { return in_flight[c]; }));
      }
      ++in_flight[e];
      calls.push_back(e);
      if (static_cast<int>(calls.size()) == concurrency) peak = std::max(peak, in_flight[e]);
    }
    out[bound] = peak / (static_cast<double>(concurrency) / endpoints);
  }
  return {out[0], out[1]};
}

}  // namespace

int main(int argc, char** argv) {
  size_t num_keys = 100000;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--keys=", 7) == 0) {
      num_keys = std::stoul(argv[i] + 7);
    } else if (std::strncmp(argv[i], "--out=", 6) == 0) {
      out_path = argv[i] + 6;
    } else {
      std::fprintf(stderr, "usage: %s [--keys=N] [--out=FILE]\n", argv[0]);
      return 2;
    }
  }
  std::vector<uint64_t> hashes;
  for (size_t k = 0; k < num_keys; ++k) hashes.push_back(Xxh64("user-" + std::to_string(k)));

  // Removing or adding each of a few endpoints in turn: the figures are the
  // mean over those trials (one endpoint's share varies around 1/N).
  constexpr int kTrials = 5;
  std::string json = "{\"keys\":" + std::to_string(num_keys) + ",\"trials\":" +
                     std::to_string(kTrials) + ",\"results\":[";
  bool first_row = true;
  std::printf("%-40s %5s %9s %9s %9s %9s %9s %9s %8s %8s\n", "structure", "N", "remove%",
              "x ideal", "between%", "add%", "x ideal", "between%", "spread", "bounded");
  for (const Kind& kind : Kinds()) {
    for (size_t n : {10, 100}) {
      std::vector<std::string> keys;
      for (size_t i = 0; i < n; ++i) keys.push_back(EndpointKey(i));
      const Structure base = kind.build(keys);
      Movement removed, added;
      for (int t = 0; t < kTrials; ++t) {
        std::vector<std::string> fewer = keys;
        fewer.erase(fewer.begin() + static_cast<long>(t * n / kTrials));
        const Movement r = Compare(hashes, keys, base, fewer, kind.build(fewer));
        std::vector<std::string> more = keys;
        more.push_back(EndpointKey(n + static_cast<size_t>(t)));
        const Movement a = Compare(hashes, keys, base, more, kind.build(more));
        removed.moved += r.moved / kTrials;
        removed.between_survivors += r.between_survivors / kTrials;
        added.moved += a.moved / kTrials;
        added.between_survivors += a.between_survivors / kTrials;
      }
      std::vector<size_t> per(n, 0);
      for (uint64_t h : hashes) ++per[base.owner(h)];
      const double mean_keys = static_cast<double>(num_keys) / n;
      const double keys_spread = *std::max_element(per.begin(), per.end()) / mean_keys;
      const double share_spread = *std::max_element(base.share.begin(), base.share.end()) * n;
      const auto [unbounded, bounded] = Skewed(base, n, static_cast<int>(100 * n), 125);
      std::printf("%-40s %5zu %8.2f%% %9.2f %8.2f%% %8.2f%% %9.2f %8.2f%% %8.3f %8.2f\n",
                  kind.name.c_str(), n, 100 * removed.moved, removed.moved * n,
                  100 * removed.between_survivors, 100 * added.moved, added.moved * (n + 1),
                  100 * added.between_survivors, share_spread, bounded);
      char row[1024];
      std::snprintf(row, sizeof row,
                    "%s{\"structure\":\"%s\",\"endpoints\":%zu,"
                    "\"remove\":{\"moved\":%.5f,\"ideal\":%.5f,\"between_survivors\":%.5f},"
                    "\"add\":{\"moved\":%.5f,\"ideal\":%.5f,\"between_survivors\":%.5f},"
                    "\"spread_share_max_over_mean\":%.4f,\"spread_keys_max_over_mean\":%.4f,"
                    "\"skewed_in_flight\":%d,\"skewed_max_over_mean_unbounded\":%.3f,"
                    "\"skewed_max_over_mean_factor_125\":%.3f}",
                    first_row ? "" : ",", kind.name.c_str(), n, removed.moved, 1.0 / n,
                    removed.between_survivors, added.moved, 1.0 / (n + 1), added.between_survivors,
                    share_spread, keys_spread, static_cast<int>(100 * n), unbounded, bounded);
      json += row;
      first_row = false;
    }
  }
  json += "]}\n";
  if (!out_path.empty()) {
    FILE* f = std::fopen(out_path.c_str(), "w");
    if (f == nullptr) {
      std::perror(out_path.c_str());
      return 1;
    }
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return 0;
}
