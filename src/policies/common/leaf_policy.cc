#include "policies/common/leaf_policy.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <map>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "policies/common/policy_factory.h"
#include "policies/common/trace.h"
#include "src/core/lib/gprpp/debug_location.h"

namespace lbkit::policies {

LeafPolicy::LeafPolicy(Args args, absl::string_view policy_name)
    : LoadBalancingPolicy(std::move(args)),
      policy_name_(policy_name),
      stats_(stats::PolicyStats::Register(std::string(policy_name), /*counts_calls=*/true)),
      endpoints_(policy_name, channel_control_helper(), interested_parties(),
                 work_serializer(), this),
      slow_start_timer_(channel_control_helper()->GetEventEngine(), work_serializer()),
      rebuild_timer_(channel_control_helper()->GetEventEngine(), work_serializer()) {}

absl::Status LeafPolicy::UpdateLocked(UpdateArgs args) {
  stats_->SetTarget(ChannelTarget(args.args, channel_control_helper()));
  if (args.config != nullptr) stats_->SetConfigJson(ConfigJson(args.config.get()));
  if (!args.addresses.ok()) {
    stats_->CountResolverError(args.addresses.status().ToString());
    // Keep serving the endpoints we have; with none, the resolver's error is
    // the best explanation for failing RPCs.
    if (endpoints_.size() == 0) {
      ReportTransientFailureLocked(args.addresses.status());
    }
    return args.addresses.status();
  }
  ApplyConfigLocked(args.config);
  // healthCheck: "watch" asks the subchannels for gRPC's own health watch
  // (as a top-level healthCheckConfig would); "poll" runs lbkit's poller.
  const absl::optional<HealthCheckParams>* health =
      args.config != nullptr ? HealthCheckOf(*args.config) : nullptr;
  grpc_core::ChannelArgs channel_args = args.args;
  if (health != nullptr && health->has_value() && !(*health)->poll()) {
    channel_args = channel_args.Set(kHealthCheckServiceNameArg, (*health)->service_name);
  }
  endpoints_.SetHealthPollingLocked(health != nullptr && health->has_value() && (*health)->poll()
                                        ? *health
                                        : absl::nullopt);
  endpoints_.UpdateLocked(*args.addresses, channel_args);
  std::vector<std::shared_ptr<stats::EndpointStats>> listed;
  for (const auto& e : endpoints_.endpoints()) listed.push_back(e->stats());
  stats_->SetEndpoints(std::move(listed));
  OnEndpointsUpdatedLocked();
  if (endpoints_.size() == 0) {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        policy_name_, ": the resolver returned an empty address list",
        args.resolution_note.empty() ? "" : ": ", args.resolution_note));
    ReportTransientFailureLocked(status);
    return status;
  }
  UpdatePickerLocked(/*force=*/true);
  return absl::OkStatus();
}

void LeafPolicy::OnEndpointsChangedLocked() {
  if (shutdown_ || endpoints_.size() == 0) return;
  UpdatePickerLocked(/*force=*/false);
}

void LeafPolicy::PublishLocked(grpc_connectivity_state state, const absl::Status& status,
                               std::unique_ptr<SubchannelPicker> picker) {
  LBKIT_TRACE(policy_name_, this, "picker: %s over %zu of %zu endpoints%s%s",
              stats::ConnectivityName(state), last_ready_.size(), endpoints_.size(),
              status.ok() ? "" : ": ", status.ok() ? "" : status.ToString().c_str());
  stats_->CountPickerUpdate();
  channel_control_helper()->UpdateState(state, status, std::move(picker));
}

void LeafPolicy::ShutdownLocked() {
  shutdown_ = true;
  slow_start_timer_.CancelLocked();
  rebuild_timer_.CancelLocked();
  endpoints_.ShutdownLocked();
}

std::vector<double> LeafPolicy::SlowStartFactorsLocked(const std::vector<Endpoint*>& ready,
                                                       const SlowStartParams* params) {
  std::vector<double> factors(ready.size(), 1.0);
  if (params == nullptr) {
    ready_since_.clear();
    return factors;
  }
  // An endpoint that left the READY set and comes back ramps again.
  std::map<const grpc_core::SubchannelInterface*, grpc_core::Duration> since;
  bool ramping = false;
  for (size_t i = 0; i < ready.size(); ++i) {
    const grpc_core::SubchannelInterface* key = ready[i]->subchannel().get();
    auto it = ready_since_.find(key);
    const grpc_core::Duration start = it == ready_since_.end() ? slow_start_clock_ : it->second;
    since.emplace(key, start);
    factors[i] = params->Factor(slow_start_clock_ - start);
    ramping = ramping || factors[i] < 1.0;
  }
  ready_since_ = std::move(since);
  if (ramping && !slow_start_timer_.armed()) {
    slow_start_step_ = params->Step();
    slow_start_timer_.ArmLocked(slow_start_step_, [this] { OnSlowStartTickLocked(); });
  }
  return factors;
}

void LeafPolicy::OnSlowStartTickLocked() {
  slow_start_clock_ += slow_start_step_;
  // Republishes with the grown weights (and re-arms while one still ramps).
  RebuildPickerLocked();
}

void LeafPolicy::RequestPickerRebuildLocked(grpc_core::Duration after) {
  if (after <= grpc_core::Duration::Zero()) {
    RebuildPickerLocked();
    return;
  }
  rebuild_timer_.ArmLocked(after, [this] { RebuildPickerLocked(); });
}

void LeafPolicy::RebuildPickerLocked() {
  if (shutdown_ || endpoints_.size() == 0) return;
  UpdatePickerLocked(/*force=*/true);
}

void LeafPolicy::ReportTransientFailureLocked(absl::Status status) {
  last_state_ = GRPC_CHANNEL_TRANSIENT_FAILURE;
  last_ready_.clear();
  PublishLocked(GRPC_CHANNEL_TRANSIENT_FAILURE, status,
                std::make_unique<TransientFailurePicker>(status));
}

void LeafPolicy::UpdatePickerLocked(bool force) {
  const grpc_connectivity_state state = endpoints_.AggregateState();
  std::vector<Endpoint*> ready = endpoints_.ReadyEndpoints();
  std::vector<const grpc_core::SubchannelInterface*> ready_subchannels;
  ready_subchannels.reserve(ready.size());
  for (Endpoint* endpoint : ready) {
    ready_subchannels.push_back(endpoint->subchannel().get());
  }
  // An unchanged picker is not republished: a new one would restart
  // rotations and reshuffle state for nothing. TRANSIENT_FAILURE is, since
  // its message names the latest error.
  if (!force && state == last_state_ && ready_subchannels == last_ready_ &&
      state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
    return;
  }
  last_state_ = state;
  last_ready_ = std::move(ready_subchannels);
  switch (state) {
    case GRPC_CHANNEL_READY:
      PublishLocked(GRPC_CHANNEL_READY, absl::OkStatus(), MakeReadyPicker(ready));
      break;
    case GRPC_CHANNEL_CONNECTING:
      PublishLocked(GRPC_CHANNEL_CONNECTING, absl::OkStatus(),
                    std::make_unique<QueuePicker>(Ref(DEBUG_LOCATION, "QueuePicker")));
      break;
    default: {
      absl::Status status = absl::UnavailableError(absl::StrCat(
          policy_name_, ": connections to all ", endpoints_.size(),
          " endpoints failing; last error: ",
          endpoints_.last_failure().ToString()));
      PublishLocked(GRPC_CHANNEL_TRANSIENT_FAILURE, status,
                    std::make_unique<TransientFailurePicker>(status));
      break;
    }
  }
}

}  // namespace lbkit::policies
