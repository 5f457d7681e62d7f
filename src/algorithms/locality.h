// Locality-aware routing arithmetic, as Envoy and Istio compute it
// (Envoy's priority load in load_balancer_impl.cc, Istio's loadbalancer.go; docs/istio.md): which priority level each endpoint belongs to
// (proximity to the client, Istio's `failover` and `failoverPriority`),
// Istio's `distribute` locality weights, and Envoy's per-priority load with
// overprovisioning and panic. No gRPC here: lbkit_locality feeds it counts
// and gets back shares.
//
//   std::vector<PriorityHealth> levels = {{2, 3}, {2, 2}, {2, 2}};  // healthy, total
//   PriorityLoad load = ComputePriorityLoad(levels, 140, 50);
//   // load.percent == {93, 7, 0}: one of three local endpoints down sends
//   // 7% of the traffic to the next level.

#ifndef LBKIT_ALGORITHMS_LOCALITY_H_
#define LBKIT_ALGORITHMS_LOCALITY_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace lbkit::algorithms {

struct LocalityName {
  std::string region, zone, sub_zone;

  bool operator<(const LocalityName& o) const {
    return std::tie(region, zone, sub_zone) < std::tie(o.region, o.zone, o.sub_zone);
  }
  bool operator==(const LocalityName& o) const {
    return region == o.region && zone == o.zone && sub_zone == o.sub_zone;
  }
  std::string ToString() const {
    std::string out = region;
    if (!zone.empty() || !sub_zone.empty()) out += "/" + zone;
    if (!sub_zone.empty()) out += "/" + sub_zone;
    return out;
  }
};

// "region[/zone[/subZone]]", Istio's notation; nullopt when malformed (empty
// region, more than three segments, a wildcard).
inline std::optional<LocalityName> ParseLocalityName(std::string_view text) {
  LocalityName out;
  std::string* parts[3] = {&out.region, &out.zone, &out.sub_zone};
  for (int i = 0; i < 3; ++i) {
    const size_t slash = text.find('/');
    *parts[i] = std::string(text.substr(0, slash));
    if (parts[i]->find('*') != std::string::npos) return std::nullopt;
    if (slash == std::string_view::npos) {
      if (out.region.empty()) return std::nullopt;
      return out;
    }
    text = text.substr(slash + 1);
  }
  return std::nullopt;  // a fourth segment
}

// Whether `pattern` is a valid Istio locality pattern: one to three
// segments, each non-empty ("*" allowed).
inline bool IsLocalityPattern(std::string_view pattern) {
  for (int i = 0; i < 3; ++i) {
    const size_t slash = pattern.find('/');
    if (pattern.substr(0, slash).empty()) return false;
    if (slash == std::string_view::npos) return true;
    pattern = pattern.substr(slash + 1);
  }
  return false;
}

// Istio's locality pattern: "region", "region/zone", "region/zone/subzone",
// where a segment may be "*" and omitted trailing segments match anything.
inline bool LocalityMatches(std::string_view pattern, const LocalityName& locality) {
  const std::string_view parts[3] = {locality.region, locality.zone, locality.sub_zone};
  for (int i = 0; i < 3; ++i) {
    if (pattern.empty()) return true;  // omitted trailing segments
    const size_t slash = pattern.find('/');
    const std::string_view segment = pattern.substr(0, slash);
    if (segment != "*" && segment != parts[i]) return false;
    pattern = slash == std::string_view::npos ? std::string_view() : pattern.substr(slash + 1);
  }
  return true;
}

struct FailoverRule {
  std::string from;  // region
  std::string to;    // region
};

// Istio's proximity priority: 0 same region/zone/subzone, 1 same region and
// zone, 2 same region, 3 elsewhere; with a failover rule whose `from` is the
// client's region, regions other than the client's and the rule's `to` drop
// to 4, so the `to` region is the only one tried at 3.
inline uint32_t ProximityPriority(const LocalityName& client, const LocalityName& endpoint,
                                  const std::vector<FailoverRule>& failover) {
  if (endpoint.region == client.region) {
    if (endpoint.zone == client.zone) return endpoint.sub_zone == client.sub_zone ? 0 : 1;
    return 2;
  }
  for (const FailoverRule& rule : failover) {
    if (rule.from == client.region) return endpoint.region == rule.to ? 3 : 4;
  }
  return 3;
}

// Istio's failoverPriority: keys in order, each compared between the client
// and the endpoint; the first mismatch at index j gives priority N - j, a
// full match 0. `client_value(i)` and `endpoint_value(i)` return the values
// for key i (nullopt when absent). An absent value compares as "", as in
// Istio: absent on both sides matches, absent on one side does not.
template <typename ClientValue, typename EndpointValue>
uint32_t LabelPriority(size_t num_keys, ClientValue&& client_value,
                       EndpointValue&& endpoint_value) {
  for (size_t j = 0; j < num_keys; ++j) {
    const std::optional<std::string> c = client_value(j);
    const std::optional<std::string> e = endpoint_value(j);
    if (c.value_or("") != e.value_or("")) return static_cast<uint32_t>(num_keys - j);
  }
  return 0;
}

// Renumbers priorities 0..K-1 keeping their order (Istio compacts).
inline std::vector<uint32_t> CompactPriorities(const std::vector<uint32_t>& raw) {
  std::vector<uint32_t> distinct = raw;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<uint32_t> out;
  out.reserve(raw.size());
  for (uint32_t p : raw) {
    out.push_back(static_cast<uint32_t>(
        std::lower_bound(distinct.begin(), distinct.end(), p) - distinct.begin()));
  }
  return out;
}

struct DistributeRule {
  std::string from;                                  // locality pattern
  std::vector<std::pair<std::string, uint32_t>> to;  // pattern -> percent, in order
};

// Istio's `distribute`: the first rule whose `from` matches the client. Each
// `to` pattern, in order, claims the localities it matches that no earlier
// pattern claimed; a claimed locality with `endpoints` e gets weight
// ceil(e * X / sum of e over the pattern's localities). Unclaimed localities
// get 0 (no traffic). nullopt when no rule matches the client.
inline std::optional<std::vector<uint64_t>> DistributeWeights(
    const LocalityName& client, const std::vector<DistributeRule>& rules,
    const std::vector<LocalityName>& localities, const std::vector<uint64_t>& endpoints) {
  for (const DistributeRule& rule : rules) {
    if (!LocalityMatches(rule.from, client)) continue;
    std::vector<uint64_t> weights(localities.size(), 0);
    std::vector<bool> claimed(localities.size(), false);
    for (const auto& [pattern, percent] : rule.to) {
      std::vector<size_t> mine;
      uint64_t sum = 0;
      for (size_t i = 0; i < localities.size(); ++i) {
        if (!claimed[i] && LocalityMatches(pattern, localities[i])) {
          mine.push_back(i);
          sum += endpoints[i];
        }
      }
      for (size_t i : mine) {
        claimed[i] = true;
        if (sum > 0) weights[i] = (endpoints[i] * percent + sum - 1) / sum;
      }
    }
    return weights;
  }
  return std::nullopt;
}

// What lbkit_locality knows about where its endpoints should go.
struct PlacementRules {
  std::optional<LocalityName> client;
  std::vector<FailoverRule> failover;
  std::vector<DistributeRule> distribute;
  size_t num_priority_keys = 0;  // Istio's failoverPriority entries
};

// Where one endpoint goes: a group (its locality, split by failoverPriority
// labels) at a priority level, with its locality's distribute weight.
struct Placement {
  uint32_t label_priority = 0;  // from failoverPriority; part of the group's identity
  uint32_t priority = 0;        // the level, compacted to 0..K-1
  uint64_t weight = 0;          // distribute weight; 0 = pooled by healthy endpoints
  bool excluded = false;        // distribute sends its locality no traffic
};

// Istio's placement of `endpoints` (each endpoint's locality, in order):
// proximity and failover levels, failoverPriority levels, and distribute
// weights. `client_value(i)` is the client's value for failoverPriority
// entry i, `endpoint_value(e, i)` endpoint e's (nullopt when absent).
//  - Proximity (region/zone/subZone and failover rules) applies under
//    failoverPriority only when failover is set too; with failoverPriority
//    alone the levels come from the labels alone.
//  - With distribute rules Istio sets no priorities at all: a client no
//    rule's `from` covers gets no locality preference.
template <typename ClientValue, typename EndpointValue>
std::vector<Placement> PlaceEndpoints(const PlacementRules& rules,
                                      const std::vector<LocalityName>& endpoints,
                                      ClientValue&& client_value, EndpointValue&& endpoint_value) {
  std::vector<LocalityName> localities;  // distinct, in first-seen order
  std::map<LocalityName, size_t> locality_index;
  std::vector<uint64_t> locality_endpoints;
  std::vector<size_t> locality_of;
  for (const LocalityName& name : endpoints) {
    auto [it, inserted] = locality_index.emplace(name, localities.size());
    if (inserted) {
      localities.push_back(name);
      locality_endpoints.push_back(0);
    }
    ++locality_endpoints[it->second];
    locality_of.push_back(it->second);
  }
  std::optional<std::vector<uint64_t>> weights;
  if (rules.client.has_value() && !rules.distribute.empty()) {
    weights = DistributeWeights(*rules.client, rules.distribute, localities, locality_endpoints);
  }
  const bool proximity = rules.num_priority_keys == 0 || !rules.failover.empty();
  const bool prioritised = rules.distribute.empty();
  std::vector<Placement> out(endpoints.size());
  std::vector<uint32_t> raw(endpoints.size(), 0);
  for (size_t e = 0; e < endpoints.size(); ++e) {
    Placement& p = out[e];
    uint32_t priority = 0;
    if (rules.client.has_value() && proximity && prioritised) {
      priority = ProximityPriority(*rules.client, endpoints[e], rules.failover);
    }
    if (rules.num_priority_keys > 0 && prioritised) {
      p.label_priority = LabelPriority(rules.num_priority_keys, client_value,
                                       [&](size_t i) { return endpoint_value(e, i); });
      priority = p.label_priority * 5 + priority;
    }
    if (weights.has_value()) {
      p.weight = (*weights)[locality_of[e]];
      p.excluded = p.weight == 0;
    } else {
      raw[e] = priority;
    }
  }
  const std::vector<uint32_t> priorities = CompactPriorities(raw);
  for (size_t e = 0; e < endpoints.size(); ++e) out[e].priority = priorities[e];
  return out;
}

struct PriorityHealth {
  uint64_t healthy = 0;
  uint64_t total = 0;
};

struct PriorityLoad {
  std::vector<uint32_t> percent;  // per priority, sums to 100 when any has endpoints
  std::vector<bool> panic;        // the level uses all its endpoints, healthy or not
};

// Envoy's priority load: health[P] = min(100, OF * healthy / total),
// normalized total availability NTA = min(100, sum health), loads handed out
// in priority order as health * 100 / NTA, rounding leftovers to the first
// level with health. A level is in panic when NTA < 100 and its healthy
// percentage is below `panic_threshold` (0 = never); when every level with
// endpoints is, the load follows endpoint counts instead.
inline PriorityLoad ComputePriorityLoad(const std::vector<PriorityHealth>& levels,
                                        uint32_t overprovisioning, uint32_t panic_threshold) {
  const size_t n = levels.size();
  PriorityLoad out{std::vector<uint32_t>(n, 0), std::vector<bool>(n, false)};
  if (n == 0) return out;
  std::vector<uint64_t> health(n, 0);
  uint64_t sum_health = 0, all_endpoints = 0;
  for (size_t p = 0; p < n; ++p) {
    if (levels[p].total > 0) {
      health[p] = std::min<uint64_t>(100, overprovisioning * levels[p].healthy / levels[p].total);
    }
    sum_health += health[p];
    all_endpoints += levels[p].total;
  }
  const uint64_t nta = std::min<uint64_t>(100, sum_health);

  bool all_panic = all_endpoints > 0;
  for (size_t p = 0; p < n; ++p) {
    if (levels[p].total == 0) continue;
    out.panic[p] = nta < 100 && panic_threshold > 0 &&
                   100 * levels[p].healthy < panic_threshold * levels[p].total;
    all_panic = all_panic && out.panic[p];
  }

  if (all_panic) {
    uint64_t left = 100;
    for (size_t p = 0; p < n; ++p) {
      out.percent[p] = static_cast<uint32_t>(100 * levels[p].total / all_endpoints);
      left -= out.percent[p];
    }
    for (size_t p = 0; p < n && left > 0; ++p) {
      if (levels[p].total > 0) {
        out.percent[p] += static_cast<uint32_t>(left);
        left = 0;
      }
    }
    return out;
  }
  if (nta == 0) {
    // Nothing healthy and panic off: Envoy sends everything to P0.
    out.percent[0] = 100;
    return out;
  }
  uint64_t left = 100;
  for (size_t p = 0; p < n; ++p) {
    out.percent[p] = static_cast<uint32_t>(std::min<uint64_t>(left, health[p] * 100 / nta));
    left -= out.percent[p];
  }
  for (size_t p = 0; p < n && left > 0; ++p) {
    if (health[p] > 0) {
      out.percent[p] += static_cast<uint32_t>(left);
      left = 0;
    }
  }
  return out;
}

// Envoy's locality-weighted share within a level (Istio `distribute`):
// effective weight W * min(1, OF/100 * healthy / total).
inline double EffectiveLocalityWeight(uint64_t weight, uint64_t healthy, uint64_t total,
                                      uint32_t overprovisioning) {
  if (total == 0) return 0;
  const double availability =
      std::min(1.0, overprovisioning / 100.0 * static_cast<double>(healthy) /
                        static_cast<double>(total));
  return static_cast<double>(weight) * availability;
}

}  // namespace lbkit::algorithms

#endif  // LBKIT_ALGORITHMS_LOCALITY_H_
