// Where requests went: counters every lbkit policy keeps per endpoint and per
// policy instance, and the process-wide registry lbkit::DumpState() and
// lbkit::PrometheusText() read (include/lbkit/stats.h).
//
// The data path only touches atomics in objects it already holds: a pick
// increments its endpoint's `picks`; a call tracker from a per-thread pool
// (no allocation in steady state) counts the call in flight, its status code
// and its duration. Everything else (registration, endpoint lists, state
// changes) happens on the policies' WorkSerializers, under one registry
// mutex that readers take too.
//
//   auto policy = stats::PolicyStats::Register("lbkit_round_robin", /*counts_calls=*/true);
//   auto endpoint = std::make_shared<stats::EndpointStats>(
//       "10.0.0.1:80", "us-east/a", std::map<std::string, std::string>{}, /*weight=*/1);
//   policy->SetEndpoints({endpoint});
//   ... in a picker (policies/common/call_counter.h):
//   return PickResult::Complete(subchannel, policies::CountCall(endpoint, nullptr));
//
// No gRPC internals here: policies feed it plain numbers and names.

#ifndef LBKIT_STATS_STATS_H_
#define LBKIT_STATS_STATS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <grpc/impl/codegen/connectivity_state.h>

#include "absl/strings/string_view.h"

namespace lbkit::stats {

inline constexpr int kNumStatusCodes = 17;
// Upper bounds of the latency histogram's buckets, in seconds (Prometheus
// `le`); a last bucket takes everything above.
inline constexpr std::array<double, 14> kLatencyBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// Health as lbkit sees it, for the dump and the metrics.
enum class Health : int { kNotChecked = 0, kUnknown = 1, kHealthy = 2, kUnhealthy = 3 };

class EndpointStats {
 public:
  EndpointStats(std::string address, std::string locality,
                std::map<std::string, std::string> labels, uint32_t weight)
      : address_(std::move(address)),
        locality_(std::move(locality)),
        labels_(std::move(labels)),
        weight_(weight) {}

  const std::string& address() const { return address_; }
  const std::string& locality() const { return locality_; }
  const std::map<std::string, std::string>& labels() const { return labels_; }
  uint32_t weight() const { return weight_; }

  // Data path.
  void CountPick() { picks_.fetch_add(1, std::memory_order_relaxed); }
  void CallStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void CallFinished(int code, int64_t duration_ns);
  void CallAbandoned() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  // Control plane.
  void SetConnectivity(grpc_connectivity_state s) { connectivity_.store(s); }
  void SetHealth(Health h) { health_.store(static_cast<int>(h)); }
  void SetEjected(bool ejected, int64_t until_unix_ms, uint32_t times) {
    ejected_until_unix_ms_.store(until_unix_ms);
    times_ejected_.store(times);
    ejected_.store(ejected);
  }

  // Readers.
  uint64_t picks() const { return picks_.load(std::memory_order_relaxed); }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  uint64_t finished(int code) const { return finished_[code].load(std::memory_order_relaxed); }
  uint64_t latency_bucket(size_t i) const { return latency_[i].load(std::memory_order_relaxed); }
  uint64_t latency_sum_ns() const { return latency_sum_ns_.load(std::memory_order_relaxed); }
  grpc_connectivity_state connectivity() const {
    return static_cast<grpc_connectivity_state>(connectivity_.load());
  }
  Health health() const { return static_cast<Health>(health_.load()); }
  bool ejected() const { return ejected_.load(); }
  int64_t ejected_until_unix_ms() const { return ejected_until_unix_ms_.load(); }
  uint32_t times_ejected() const { return times_ejected_.load(); }

 private:
  const std::string address_;
  const std::string locality_;
  const std::map<std::string, std::string> labels_;
  const uint32_t weight_;

  // Each counter written by many threads gets its own cache line, so that
  // picks and finishes on different threads do not bounce one line.
  alignas(64) std::atomic<uint64_t> picks_{0};
  alignas(64) std::atomic<int64_t> in_flight_{0};
  alignas(64) std::array<std::atomic<uint64_t>, kNumStatusCodes> finished_{};
  std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> latency_{};
  std::atomic<uint64_t> latency_sum_ns_{0};

  std::atomic<int> connectivity_{GRPC_CHANNEL_CONNECTING};
  std::atomic<int> health_{static_cast<int>(Health::kNotChecked)};
  std::atomic<bool> ejected_{false};
  std::atomic<int64_t> ejected_until_unix_ms_{0};
  std::atomic<uint32_t> times_ejected_{0};
};

// One policy instance. Registered for as long as the shared_ptr the policy
// holds lives.
class PolicyStats {
 public:
  // `counts_calls`: a leaf policy, whose endpoints count picks and calls; a
  // parent (outlier ejection, locality) lists its own view of them.
  static std::shared_ptr<PolicyStats> Register(std::string policy, bool counts_calls);
  ~PolicyStats();

  const std::string& policy() const { return policy_; }
  const uint64_t id;
  const bool counts_calls;

  // Control plane (the policy's WorkSerializer).
  void SetTarget(std::string target);
  void SetConfigJson(std::string json);
  void SetEndpoints(std::vector<std::shared_ptr<EndpointStats>> endpoints);
  // A JSON object with what only this policy knows (e.g. lbkit_locality's
  // levels); "{}" for none.
  void SetDetailJson(std::string json);
  void CountPickerUpdate() { picker_updates_.fetch_add(1, std::memory_order_relaxed); }
  // A call the policy failed on purpose (lbkit_circuit_breaker's overflow).
  void CountDrop() { drops_.fetch_add(1, std::memory_order_relaxed); }
  void CountResolverError(std::string error);

  struct Snapshot {
    uint64_t id = 0;
    bool counts_calls = false;
    std::string policy, target, config_json, detail_json, last_resolver_error;
    uint64_t picker_updates = 0, resolver_errors = 0, drops = 0;
    std::vector<std::shared_ptr<EndpointStats>> endpoints;
  };
  Snapshot Read() const;

  // Every registered policy, in registration order.
  static std::vector<Snapshot> ReadAll();

 private:
  PolicyStats(std::string policy, uint64_t id, bool counts_calls)
      : id(id), counts_calls(counts_calls), policy_(std::move(policy)) {}

  const std::string policy_;
  std::atomic<uint64_t> picker_updates_{0};
  std::atomic<uint64_t> drops_{0};
  mutable std::mutex mu_;
  std::string target_;
  std::string config_json_;
  std::string detail_json_ = "{}";
  std::string last_resolver_error_;
  uint64_t resolver_errors_ = 0;
  std::vector<std::shared_ptr<EndpointStats>> endpoints_;
};

// Whether pickers count calls (on unless LBKIT_STATS=0 or SetEnabled(false)):
// for the applications where a pick's last 20 ns matter more than seeing
// where calls went. State, health and ejections are reported either way.
bool Enabled();
void SetEnabled(bool enabled);

// A part of lbkit that is not a policy (a resolver's watches) adds a
// top-level member `name` to DumpState() with the JSON `json()` returns,
// and `prometheus()`'s lines to PrometheusText(). Registering a name again
// replaces it.
void RegisterSection(std::string name, std::function<std::string()> json,
                     std::function<std::string()> prometheus);

// The JSON of DumpState() and the text of PrometheusText().
std::string DumpJson();
std::string Prometheus();

// A JSON string literal (quotes included) for `s`.
std::string JsonString(absl::string_view s);

// "READY", ... and "HEALTHY", ...
const char* ConnectivityName(grpc_connectivity_state state);
const char* HealthName(Health health);

}  // namespace lbkit::stats

#endif  // LBKIT_STATS_STATS_H_
