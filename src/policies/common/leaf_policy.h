// The part every lbkit leaf policy shares: it owns an EndpointList, answers
// resolver updates (errors, empty lists), aggregates endpoint states into the
// channel's state and publishes pickers: a queueing one while connecting, a
// failing one (with the last error) when every endpoint has failed, and the
// subclass's own picker over the READY endpoints. A leaf policy supplies only
// its config handling and that READY picker.
//
//   class MyPolicy : public LeafPolicy {
//     MyPolicy(Args args) : LeafPolicy(std::move(args), kName) {}
//     absl::string_view name() const override { return kName; }
//     std::unique_ptr<SubchannelPicker> MakeReadyPicker(
//         const std::vector<Endpoint*>& ready) override;
//   };

#ifndef LBKIT_POLICIES_COMMON_LEAF_POLICY_H_
#define LBKIT_POLICIES_COMMON_LEAF_POLICY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpc/event_engine/event_engine.h>

#include "grpc_internal/abi_guard.h"
#include "policies/common/endpoint_list.h"
#include "policies/common/health_check.h"
#include "policies/common/policy_timer.h"
#include "policies/common/slow_start.h"
#include "src/core/lib/load_balancing/lb_policy.h"

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace lbkit::policies {

class LeafPolicy : public grpc_core::LoadBalancingPolicy,
                   public EndpointList::Observer {
 public:
  absl::Status UpdateLocked(UpdateArgs args) final;
  void ResetBackoffLocked() final { endpoints_.ResetBackoffLocked(); }
  void OnEndpointsChangedLocked() final;
  std::unique_ptr<EndpointData> MakeEndpointDataLocked() final { return MakeEndpointData(); }

 protected:
  LeafPolicy(Args args, absl::string_view policy_name);

  // Takes the new config before the endpoints are reconciled; a picker is
  // published after every update, so a changed config always takes effect.
  virtual void ApplyConfigLocked(
      const grpc_core::RefCountedPtr<Config>& /*config*/) {}

  // The policy's `healthCheck` config object, if it has one set.
  virtual const absl::optional<HealthCheckParams>* HealthCheckOf(
      const Config& /*config*/) const {
    return nullptr;
  }

  // After a resolver update has reconciled the endpoints (the set may have
  // changed); state changes alone do not call it.
  virtual void OnEndpointsUpdatedLocked() {}

  // The policy's own data for a new endpoint (EndpointData), or null.
  virtual std::unique_ptr<EndpointData> MakeEndpointData() { return nullptr; }

  // A picker over `ready` (at least one endpoint, each with a subchannel).
  virtual std::unique_ptr<SubchannelPicker> MakeReadyPicker(
      const std::vector<Endpoint*>& ready) = 0;

  const EndpointList& endpoints() const { return endpoints_; }
  stats::PolicyStats& policy_stats() { return *stats_; }

  // Slow start (slow_start.h): the weight factor of each of `ready`, in
  // order; all 1 when `params` is null. While an endpoint ramps, the picker
  // is rebuilt every params->Step(), counted on the policy's EventEngine
  // timers (so a test's fake clock drives the ramp).
  std::vector<double> SlowStartFactorsLocked(const std::vector<Endpoint*>& ready,
                                             const SlowStartParams* params);

  // Publishes a new picker over the current READY set even though it has
  // not changed: now, or after `after` on the policy's EventEngine (for a
  // picker that reads time, as slow start's does). One timed rebuild is
  // pending at a time; the later request replaces the earlier.
  void RequestPickerRebuildLocked(grpc_core::Duration after = grpc_core::Duration::Zero());

 private:
  void OnSlowStartTickLocked();
  void RebuildPickerLocked();
  void ShutdownLocked() final;
  void ReportTransientFailureLocked(absl::Status status);
  void PublishLocked(grpc_connectivity_state state, const absl::Status& status,
                     std::unique_ptr<SubchannelPicker> picker);
  // Publishes a picker if the state or the READY set changed, or `force`.
  void UpdatePickerLocked(bool force);

  const std::string policy_name_;
  const std::shared_ptr<stats::PolicyStats> stats_;
  EndpointList endpoints_;
  bool shutdown_ = false;
  // What the last published picker was built from. Compared by subchannel,
  // not by Endpoint: the published picker holds a reference to each of its
  // subchannels, so none can be freed and its address reused while it is
  // listed here (an Endpoint can be).
  grpc_connectivity_state last_state_ = GRPC_CHANNEL_IDLE;
  std::vector<const grpc_core::SubchannelInterface*> last_ready_;
  // Slow start: when each READY subchannel became READY, on a clock that
  // runs only while one ramps (advanced by the tick timer).
  std::map<const grpc_core::SubchannelInterface*, grpc_core::Duration> ready_since_;
  grpc_core::Duration slow_start_clock_;
  grpc_core::Duration slow_start_step_;
  PolicyTimer slow_start_timer_;
  PolicyTimer rebuild_timer_;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_LEAF_POLICY_H_
