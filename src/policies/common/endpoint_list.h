// The endpoints of one leaf policy: a subchannel per address, the connectivity
// state the policy acts on, and reconciliation with each resolver update.
//
// Every lbkit leaf policy (round robin, least request, hashing, ...) owns one
// EndpointList and builds its immutable pickers from it. The list:
//  - keeps an endpoint, its subchannel and its state across resolver updates
//    when its address (with its per-address args and attributes) stays, so an
//    update never reconnects or resets what already works (docs/grpc-internals.md, "Foundations");
//  - applies gRPC's round-robin state rules: IDLE counts as CONNECTING and is
//    asked to connect at once; TRANSIENT_FAILURE stays sticky until the
//    endpoint is READY again, so a backend cycling through CONNECTING does
//    not flap the aggregate state;
//  - asks for re-resolution when an endpoint goes to TRANSIENT_FAILURE (not on
//    the first report, which would loop with the resolver);
//  - when an update replaces every READY endpoint, keeps the replaced READY
//    ones usable until a new one is READY or every new one has failed, as
//    gRPC's own policies keep their old subchannel list, so an address
//    change does not queue RPCs.
// All methods run on the policy's WorkSerializer (hence `Locked`).

#ifndef LBKIT_POLICIES_COMMON_ENDPOINT_LIST_H_
#define LBKIT_POLICIES_COMMON_ENDPOINT_LIST_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpc/support/log.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "policies/common/health_check.h"
#include "stats/stats.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/channel/channel_args.h"
#include "src/core/lib/gprpp/ref_counted.h"
#include "src/core/lib/gprpp/ref_counted_ptr.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "src/core/lib/load_balancing/subchannel_interface.h"
#include "src/core/lib/resolver/server_address.h"

namespace lbkit::policies {

class EndpointList;

// Set by the client channel from healthCheckConfig.serviceName (and by a
// leaf policy for its own healthCheck); not in a public header of gRPC 1.51.
inline constexpr char kHealthCheckServiceNameArg[] = "grpc.internal.health_check_service_name";

// What a leaf policy keeps per endpoint beyond what every policy needs
// (least request's in-flight count and latency estimate, bounded load's
// count), as gRPC's EndpointList::Init takes a create_endpoint callback. The
// policy makes it for each new endpoint (LeafPolicy::MakeEndpointData), and
// it lives as long as the endpoint: across picker rebuilds, and across
// resolver updates that keep the address. A subclass sets `kind` to its own
// &kKind, which Endpoint::data<T>() checks.
class EndpointData {
 public:
  explicit EndpointData(const void* kind) : kind_(kind) {}
  virtual ~EndpointData() = default;
  const void* kind() const { return kind_; }

  // The endpoint lets go of its data (Endpoint's destructor): freed now,
  // unless a subclass still has users (CallCountedData).
  virtual void ReleaseByEndpoint() { delete this; }
  struct ReleaseDeleter {
    void operator()(EndpointData* data) const { data->ReleaseByEndpoint(); }
  };

 private:
  const void* const kind_;
};

// Per-endpoint data with a count of calls in flight that also keeps the data
// alive: the endpoint holds a large bias and every call one unit, so the
// data is freed by whoever lets go last, the endpoint or the last call. A
// call's tracker then needs no reference to the endpoint itself (two locked
// instructions per call saved).
//
//   data->CallPicked();   // at the pick
//   ...
//   data->CallEnded();    // when the tracker goes; the data may be gone after
class CallCountedData : public EndpointData {
 public:
  // Calls picked and not ended. Only while the endpoint holds the data
  // (a picker's pick, whose endpoint reference guarantees it).
  int64_t in_flight() const { return count_.load(std::memory_order_relaxed) - kEndpointHolds; }
  void CallPicked() { count_.fetch_add(1, std::memory_order_relaxed); }
  void CallEnded() {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 protected:
  explicit CallCountedData(const void* kind) : EndpointData(kind) {}

 private:
  static constexpr int64_t kEndpointHolds = int64_t{1} << 40;
  void ReleaseByEndpoint() final {
    if (count_.fetch_sub(kEndpointHolds, std::memory_order_acq_rel) == kEndpointHolds) delete this;
  }
  std::atomic<int64_t> count_{kEndpointHolds};
};

// One backend address as a policy sees it. Reference-counted: pickers and
// call trackers may hold it past the list's next update.
class Endpoint : public grpc_core::RefCounted<Endpoint> {
 public:
  Endpoint(EndpointList* list, grpc_core::ServerAddress address,
           std::string address_text);
  ~Endpoint() override;

  const grpc_core::ServerAddress& address() const { return address_; }
  // "127.0.0.1:50051" or "[::1]:50051".
  const std::string& address_text() const { return address_text_; }
  // Null once the endpoint is shut down.
  const grpc_core::RefCountedPtr<grpc_core::SubchannelInterface>& subchannel()
      const {
    return subchannel_;
  }
  // The state the policy acts on: CONNECTING (also before the first report
  // and for IDLE, and while a polled health check has no verdict yet), READY
  // (connected and, when polled, healthy) or TRANSIENT_FAILURE.
  grpc_connectivity_state state() const { return state_; }
  // With healthCheck "poll": the poller's verdict. Always kUnknown otherwise.
  algorithms::HealthThresholds::State health() const { return health_; }
  // What lbkit::DumpState() and the metrics show of this endpoint; pickers
  // count picks and calls into it.
  const std::shared_ptr<stats::EndpointStats>& stats() const { return stats_; }
  // Why the endpoint last went to TRANSIENT_FAILURE.
  const absl::Status& last_failure() const { return last_failure_; }

  // The policy's own data for this endpoint (see EndpointData): a T made by
  // the policy's MakeEndpointData(). Checked: a different kind (or none)
  // aborts rather than reinterpret memory.
  template <typename T>
  T& data() const {
    GPR_ASSERT(data_ != nullptr && data_->kind() == &T::kKind);
    return static_cast<T&>(*data_);
  }

 private:
  friend class EndpointList;
  class Watcher;

  void StartWatchingLocked(const grpc_core::ChannelArgs& args);
  void ShutdownLocked();
  void OnStateChangeLocked(grpc_connectivity_state new_state,
                           absl::Status status);
  void OnHealthLocked(bool healthy, absl::Status why);
  // Applies the connectivity state combined with the health verdict.
  void UpdateLogicalStateLocked();

  EndpointList* list_;  // Null once shut down.
  const grpc_core::ServerAddress address_;
  const std::string address_text_;
  grpc_core::RefCountedPtr<grpc_core::SubchannelInterface> subchannel_;
  Watcher* watcher_ = nullptr;  // Owned by the subchannel.
  bool reported_once_ = false;
  grpc_connectivity_state connectivity_ = GRPC_CHANNEL_CONNECTING;  // as reported
  grpc_core::OrphanablePtr<HealthPoller> poller_;
  algorithms::HealthThresholds::State health_ = algorithms::HealthThresholds::State::kUnknown;
  absl::Status health_status_;
  grpc_connectivity_state state_ = GRPC_CHANNEL_CONNECTING;
  absl::Status last_failure_;
  const std::unique_ptr<EndpointData, EndpointData::ReleaseDeleter> data_;
  std::shared_ptr<stats::EndpointStats> stats_;
};

class EndpointList {
 public:
  // What the owning policy hears about its endpoints.
  class Observer {
   public:
    virtual ~Observer() = default;
    // An endpoint's policy-visible state() changed, or the set of endpoints
    // usable for picking did (e.g. a retained endpoint was released).
    virtual void OnEndpointsChangedLocked() = 0;
    // The policy's data for a new endpoint, or null (see EndpointData).
    virtual std::unique_ptr<EndpointData> MakeEndpointDataLocked() { return nullptr; }
  };

  // `policy_name` prefixes log lines. The helper and pollset set belong to
  // the policy, which must outlive the list (or shut it down first).
  EndpointList(absl::string_view policy_name,
               grpc_core::LoadBalancingPolicy::ChannelControlHelper* helper,
               grpc_pollset_set* interested_parties,
               std::shared_ptr<grpc_core::WorkSerializer> work_serializer, Observer* observer);

  // Health polling for the endpoints of the next UpdateLocked() (nullopt:
  // none). A change recreates every endpoint.
  void SetHealthPollingLocked(absl::optional<HealthCheckParams> params);
  ~EndpointList();

  EndpointList(const EndpointList&) = delete;
  EndpointList& operator=(const EndpointList&) = delete;

  // Reconciles the endpoints with a resolver update. `args` are the update's
  // channel args, handed to every new subchannel (they carry the health
  // check service name). Duplicate addresses collapse into one endpoint.
  // The observer is not called during it (an endpoint that fails at once
  // included): the caller publishes afterwards.
  void UpdateLocked(const grpc_core::ServerAddressList& addresses,
                    const grpc_core::ChannelArgs& args);

  // Drops every endpoint and its subchannel; the list can be updated again.
  void ShutdownLocked();
  void ResetBackoffLocked();

  // In resolver order, duplicates removed.
  const std::vector<grpc_core::RefCountedPtr<Endpoint>>& endpoints() const {
    return endpoints_;
  }
  size_t size() const { return endpoints_.size(); }

  // The endpoints a picker may use: the READY current ones, or, while none is
  // READY yet after an update, the READY ones the update replaced.
  std::vector<Endpoint*> ReadyEndpoints() const;

  size_t num_ready() const { return num_ready_; }

  // gRPC's round-robin aggregation, first match wins: READY if any endpoint
  // (or retained endpoint) is READY; CONNECTING if any is CONNECTING;
  // TRANSIENT_FAILURE when all have failed (or the list is empty).
  grpc_connectivity_state AggregateState() const;

  // The failure of the endpoint that failed last, for TRANSIENT_FAILURE
  // pickers; OK if none has.
  const absl::Status& last_failure() const { return last_failure_; }

 private:
  friend class Endpoint;

  void OnEndpointStateChangeLocked(Endpoint* endpoint,
                                   grpc_connectivity_state old_state,
                                   grpc_connectivity_state new_state);
  void CountLocked(grpc_connectivity_state state, int delta);
  void MaybeReleaseRetainedLocked();
  absl::flat_hash_map<std::string, grpc_core::RefCountedPtr<Endpoint>> TakeRetainedLocked();
  // Whether the health-check settings changed since the last update.
  bool HealthSettingsChangedLocked(const grpc_core::ChannelArgs& args);
  void RetireRemovedLocked(std::vector<grpc_core::RefCountedPtr<Endpoint>> old_endpoints,
                           const absl::flat_hash_map<std::string, Endpoint*>& removed,
                           bool had_ready);

  std::string policy_name_;
  grpc_core::LoadBalancingPolicy::ChannelControlHelper* helper_;
  grpc_pollset_set* interested_parties_;
  std::shared_ptr<grpc_core::WorkSerializer> work_serializer_;
  Observer* observer_;
  absl::optional<HealthCheckParams> polling_;
  bool polling_changed_ = false;

  std::vector<grpc_core::RefCountedPtr<Endpoint>> endpoints_;
  absl::flat_hash_map<std::string, Endpoint*> by_address_;
  // READY endpoints an update removed while no new endpoint was READY.
  std::vector<grpc_core::RefCountedPtr<Endpoint>> retained_;
  // The health-check args the subchannels were created with: when they
  // change, every subchannel must be recreated to pick them up.
  absl::optional<std::string> health_check_service_name_;
  bool inhibit_health_checking_ = false;

  bool updating_ = false;  // inside UpdateLocked(): the observer hears nothing
  size_t num_ready_ = 0;
  size_t num_connecting_ = 0;
  size_t num_transient_failure_ = 0;
  absl::Status last_failure_;
};

// "127.0.0.1:50051" / "[::1]:50051" for an address, as Envoy prints hosts.
std::string AddressText(const grpc_core::ServerAddress& address);

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_ENDPOINT_LIST_H_
