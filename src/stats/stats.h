// Where requests went: counters every lbkit policy keeps per endpoint and per
// policy instance, and the process-wide registry lbkit::DumpState() and
// lbkit::PrometheusText() read (include/lbkit/stats.h).
//
// The data path only touches atomics in objects it already holds: a pick
// adds to this thread's own pick cell for the endpoint (no locked
// instruction); a call tracker from a per-thread pool (no allocation in
// steady state) holding a raw pointer counts the call's status code and
// duration when it finishes (docs/stats.md has the design and its costs).
// Everything else (registration, endpoint lists, state changes) happens on
// the policies' WorkSerializers, under one registry mutex that readers take
// too.
//
//   auto policy = stats::PolicyStats::Register("lbkit_round_robin", /*counts_calls=*/true);
//   auto endpoint = stats::EndpointStats::Create(
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

namespace internal {

// The two counters every pick touches, kept per thread so that a pick
// costs no locked instruction: a thread adds to its own cell with a plain
// load and store, and readers add up every thread's cells (under the cell
// registry's mutex). A thread that exits folds its cells into a shared
// table, which is then added to with atomic read-modify-writes.
struct PickCell {
  std::atomic<uint64_t> picks{0};
  std::atomic<uint64_t> abandoned{0};  // picks whose call never finished
};

struct CellRegistry;

struct ThreadCells {
  static constexpr size_t kChunkSlots = 256;
  // 262,144 endpoint stats alive at once; more count in their own cell.
  static constexpr size_t kMaxChunks = 1024;
  static constexpr uint32_t kNoSlot = kChunkSlots * kMaxChunks;
  using Chunk = std::array<PickCell, kChunkSlots>;
  std::array<std::atomic<Chunk*>, kMaxChunks> chunks{};
  bool shared = false;  // the table of exited threads: atomic adds
};

// This thread's table (null until its first count).
inline thread_local ThreadCells* tls_cells = nullptr;
ThreadCells* RegisterThreadCells();
PickCell& CellSlow(ThreadCells* cells, uint32_t slot);

// Release either way: the graveyard reads the counts with acquire before
// it frees an endpoint's stats, which must follow the count's last touch.
inline void AddToCell(ThreadCells* cells, std::atomic<uint64_t>& counter) {
  if (cells->shared) {
    counter.fetch_add(1, std::memory_order_release);
  } else {
    // Only this thread writes this cell.
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
}

// Acquire: the shared table's chunks are published by other threads.
inline PickCell& Cell(ThreadCells* cells, uint32_t slot) {
  ThreadCells::Chunk* chunk =
      cells->chunks[slot / ThreadCells::kChunkSlots].load(std::memory_order_acquire);
  if (chunk == nullptr) return CellSlow(cells, slot);
  return (*chunk)[slot % ThreadCells::kChunkSlots];
}

}  // namespace internal

// One endpoint's counters, shared by the pickers and call trackers of the
// policy that owns it and by the readers of DumpState()/PrometheusText().
//
// Lifetime: Create() returns a shared_ptr whose release does not free the
// object at once. A call tracker holds only a raw pointer (a shared_ptr
// copy per call was two locked instructions); the released object waits
// until every call picked for it has finished or been abandoned, and is
// freed by the next Create(), release, DumpState() or PrometheusText()
// after that.
class EndpointStats {
 public:
  static std::shared_ptr<EndpointStats> Create(std::string address, std::string locality,
                                               std::map<std::string, std::string> labels,
                                               uint32_t weight);

  const std::string& address() const { return address_; }
  const std::string& locality() const { return locality_; }
  const std::map<std::string, std::string>& labels() const { return labels_; }
  uint32_t weight() const { return weight_; }

  // Data path. Every CountPick() is matched by exactly one CallFinished()
  // or CallAbandoned(), after which the caller must not touch the object.
  void CountPick() { Count(&internal::PickCell::picks); }
  void CallFinished(int code, int64_t duration_ns);
  void CallAbandoned() { Count(&internal::PickCell::abandoned); }
  // A latency-aware policy's current estimate for the endpoint, shown in
  // the dump; negative: none.
  void SetLatencyEstimate(double ns) { latency_estimate_ns_.store(ns, std::memory_order_relaxed); }

  // Control plane.
  void SetConnectivity(grpc_connectivity_state s) { connectivity_.store(s); }
  void SetHealth(Health h) { health_.store(static_cast<int>(h)); }
  void SetEjected(bool ejected, int64_t until_unix_ms, uint32_t times) {
    ejected_until_unix_ms_.store(until_unix_ms);
    times_ejected_.store(times);
    ejected_.store(ejected);
  }

  // Readers.
  uint64_t picks() const;
  // Calls picked and not yet finished or abandoned.
  int64_t in_flight() const;
  // The call counts read together, so that picks >= finished + in flight.
  struct CallCounts {
    uint64_t picks = 0;
    int64_t in_flight = 0;
    std::array<uint64_t, kNumStatusCodes> finished{};
  };
  CallCounts ReadCallCounts() const;
  // The same with the cell registry's mutex held.
  CallCounts ReadCallCountsLocked(internal::CellRegistry& r) const;
  uint64_t finished(int code) const { return finished_[code].load(std::memory_order_relaxed); }
  uint64_t latency_bucket(size_t i) const { return latency_[i].load(std::memory_order_relaxed); }
  uint64_t latency_sum_ns() const { return latency_sum_ns_.load(std::memory_order_relaxed); }
  double latency_estimate_ns() const {
    return latency_estimate_ns_.load(std::memory_order_relaxed);
  }
  grpc_connectivity_state connectivity() const {
    return static_cast<grpc_connectivity_state>(connectivity_.load());
  }
  Health health() const { return static_cast<Health>(health_.load()); }
  bool ejected() const { return ejected_.load(); }
  int64_t ejected_until_unix_ms() const { return ejected_until_unix_ms_.load(); }
  uint32_t times_ejected() const { return times_ejected_.load(); }

  // Only Create() makes them (the passkey keeps make_shared out: its
  // objects would be freed with calls still counting on them).
  class Key {
    friend class EndpointStats;
    Key() {}  // user-provided: Key{} is no aggregate, so only EndpointStats makes one
  };
  EndpointStats(Key, uint32_t slot, std::string address, std::string locality,
                std::map<std::string, std::string> labels, uint32_t weight)
      : slot_(slot),
        address_(std::move(address)),
        locality_(std::move(locality)),
        labels_(std::move(labels)),
        weight_(weight) {}

 private:
  friend struct Graveyard;

  void Count(std::atomic<uint64_t> internal::PickCell::*counter) {
    if (slot_ == internal::ThreadCells::kNoSlot) {
      (overflow_.*counter).fetch_add(1, std::memory_order_release);
      return;
    }
    internal::ThreadCells* cells = internal::tls_cells;
    if (cells == nullptr) cells = internal::RegisterThreadCells();
    internal::AddToCell(cells, internal::Cell(cells, slot_).*counter);
  }

  const uint32_t slot_;  // its cells in every thread's table, or kNoSlot
  const std::string address_;
  const std::string locality_;
  const std::map<std::string, std::string> labels_;
  const uint32_t weight_;

  // Each group written on the call path gets its own cache line.
  alignas(64) std::array<std::atomic<uint64_t>, kNumStatusCodes> finished_{};
  std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> latency_{};
  std::atomic<uint64_t> latency_sum_ns_{0};
  alignas(64) std::atomic<double> latency_estimate_ns_{-1};
  internal::PickCell overflow_;  // the counts of a kNoSlot endpoint

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
namespace internal {
// -1 until LBKIT_STATS is read; then 0 or 1.
inline std::atomic<int> enabled_state{-1};
bool ReadEnabled();
}  // namespace internal
inline bool Enabled() {
  const int state = internal::enabled_state.load(std::memory_order_relaxed);
  return state < 0 ? internal::ReadEnabled() : state != 0;
}
void SetEnabled(bool enabled);

// A part of lbkit that is not a policy (a resolver's watches) adds a
// top-level member `name` to DumpState() with the JSON `json()` returns,
// and `prometheus()`'s lines to PrometheusText(). Registering a name again
// replaces it.
void RegisterSection(std::string name, std::function<std::string()> json,
                     std::function<std::string()> prometheus);

// Frees the endpoint stats whose last call has ended since they were
// released (each Create() and release does too).
void SweepReleasedEndpointStats();
// How many released endpoint stats still wait for calls (tests).
size_t ReleasedEndpointStatsForTesting();

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
