// lbkit_round_robin, the template every lbkit leaf policy follows:
//   config (parsed with gRPC's JSON object loader, so errors read like
//   gRPC's own) -> policy (an EndpointList plus picker updates) -> immutable
//   picker wrapping an algorithm from src/algorithms/ -> factory ->
//   registration.
//
// Differences from gRPC's round_robin (CC/lb_policy/round_robin):
//  - subchannels and their state are kept across resolver updates instead
//    of building a new subchannel list each time (EndpointList);
//  - re-resolution is requested only on TRANSIENT_FAILURE, not on IDLE;
//  - the picker is lock-free and safe to call from several threads.

#include "policies/round_robin/round_robin.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "algorithms/round_robin.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/endpoint_list.h"
#include "policies/register.h"
#include "src/core/lib/config/core_configuration.h"
#include "src/core/lib/debug/trace.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;

grpc_core::TraceFlag g_trace(false, "lbkit_round_robin");

//
// Config
//

class RoundRobinConfig : public LoadBalancingPolicy::Config {
 public:
  absl::string_view name() const override { return kRoundRobinPolicyName; }

  static const grpc_core::JsonLoaderInterface* JsonLoader(
      const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<RoundRobinConfig>().Finish();
    return loader;
  }
};

//
// Picker
//

class RoundRobinPicker : public LoadBalancingPolicy::SubchannelPicker {
 public:
  RoundRobinPicker(std::vector<RefCountedPtr<SubchannelInterface>> subchannels,
                   size_t start)
      : subchannels_(std::move(subchannels)),
        cursor_(subchannels_.size(), start) {}

  LoadBalancingPolicy::PickResult Pick(
      LoadBalancingPolicy::PickArgs /*args*/) override {
    return LoadBalancingPolicy::PickResult::Complete(
        subchannels_[cursor_.Next()]);
  }

 private:
  const std::vector<RefCountedPtr<SubchannelInterface>> subchannels_;
  algorithms::RoundRobinCursor cursor_;
};

//
// Policy
//

class RoundRobin : public LoadBalancingPolicy, public EndpointList::Observer {
 public:
  explicit RoundRobin(Args args)
      : LoadBalancingPolicy(std::move(args)),
        endpoints_(kRoundRobinPolicyName, channel_control_helper(),
                   interested_parties(), this) {}

  absl::string_view name() const override { return kRoundRobinPolicyName; }

  absl::Status UpdateLocked(UpdateArgs args) override {
    if (!args.addresses.ok()) {
      // Keep serving the endpoints we have; with none, the resolver's error
      // is the best explanation for failing RPCs.
      if (GRPC_TRACE_FLAG_ENABLED(g_trace)) {
        gpr_log(GPR_INFO, "[lbkit_round_robin %p] resolver error: %s", this,
                args.addresses.status().ToString().c_str());
      }
      if (endpoints_.size() == 0) {
        ReportTransientFailureLocked(args.addresses.status());
      }
      return args.addresses.status();
    }
    if (GRPC_TRACE_FLAG_ENABLED(g_trace)) {
      gpr_log(GPR_INFO, "[lbkit_round_robin %p] update with %zu addresses",
              this, args.addresses->size());
    }
    endpoints_.UpdateLocked(*args.addresses, args.args);
    if (endpoints_.size() == 0) {
      absl::Status status = absl::UnavailableError(absl::StrCat(
          "lbkit_round_robin: the resolver returned an empty address list",
          args.resolution_note.empty() ? "" : ": ", args.resolution_note));
      ReportTransientFailureLocked(status);
      return status;
    }
    UpdatePickerLocked();
    return absl::OkStatus();
  }

  void ResetBackoffLocked() override { endpoints_.ResetBackoffLocked(); }

  void OnEndpointsChangedLocked() override {
    if (shutdown_ || endpoints_.size() == 0) return;
    UpdatePickerLocked();
  }

 private:
  void ShutdownLocked() override {
    shutdown_ = true;
    endpoints_.ShutdownLocked();
  }

  void ReportTransientFailureLocked(absl::Status status) {
    last_state_ = GRPC_CHANNEL_TRANSIENT_FAILURE;
    last_ready_.clear();
    channel_control_helper()->UpdateState(
        GRPC_CHANNEL_TRANSIENT_FAILURE, status,
        std::make_unique<TransientFailurePicker>(status));
  }

  // Publishes a new picker when the aggregate state or the READY set
  // changed. Skipping identical pickers keeps the rotation going instead of
  // restarting it at a random index on every unrelated state change.
  void UpdatePickerLocked() {
    const grpc_connectivity_state state = endpoints_.AggregateState();
    std::vector<Endpoint*> ready = endpoints_.ReadyEndpoints();
    // Compared by subchannel, not by Endpoint: the published picker holds a
    // reference to each of its subchannels, so none of them can be freed and
    // its address reused by a new one while it is in last_ready_. (An
    // endpoint can be freed, and a new endpoint can reuse its address.)
    std::vector<const SubchannelInterface*> ready_subchannels;
    ready_subchannels.reserve(ready.size());
    for (Endpoint* endpoint : ready) {
      ready_subchannels.push_back(endpoint->subchannel().get());
    }
    if (state == last_state_ && ready_subchannels == last_ready_ &&
        state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
      return;
    }
    last_state_ = state;
    last_ready_ = std::move(ready_subchannels);
    switch (state) {
      case GRPC_CHANNEL_READY: {
        std::vector<RefCountedPtr<SubchannelInterface>> subchannels;
        subchannels.reserve(ready.size());
        for (Endpoint* endpoint : ready) {
          subchannels.push_back(endpoint->subchannel());
        }
        const size_t start = absl::Uniform<size_t>(bitgen_, 0, ready.size());
        if (GRPC_TRACE_FLAG_ENABLED(g_trace)) {
          gpr_log(GPR_INFO,
                  "[lbkit_round_robin %p] READY: %zu of %zu endpoints usable",
                  this, ready.size(), endpoints_.size());
        }
        channel_control_helper()->UpdateState(
            GRPC_CHANNEL_READY, absl::OkStatus(),
            std::make_unique<RoundRobinPicker>(std::move(subchannels), start));
        break;
      }
      case GRPC_CHANNEL_CONNECTING:
        channel_control_helper()->UpdateState(
            GRPC_CHANNEL_CONNECTING, absl::OkStatus(),
            std::make_unique<QueuePicker>(Ref(DEBUG_LOCATION, "QueuePicker")));
        break;
      default: {
        absl::Status status = absl::UnavailableError(absl::StrCat(
            "lbkit_round_robin: connections to all ", endpoints_.size(),
            " endpoints failing; last error: ",
            endpoints_.last_failure().ToString()));
        channel_control_helper()->UpdateState(
            GRPC_CHANNEL_TRANSIENT_FAILURE, status,
            std::make_unique<TransientFailurePicker>(status));
        break;
      }
    }
  }

  EndpointList endpoints_;
  absl::BitGen bitgen_;
  bool shutdown_ = false;
  // What the last published picker was built from.
  grpc_connectivity_state last_state_ = GRPC_CHANNEL_IDLE;
  std::vector<const SubchannelInterface*> last_ready_;
};

//
// Factory
//

class RoundRobinFactory : public grpc_core::LoadBalancingPolicyFactory {
 public:
  grpc_core::OrphanablePtr<LoadBalancingPolicy> CreateLoadBalancingPolicy(
      LoadBalancingPolicy::Args args) const override {
    return grpc_core::MakeOrphanable<RoundRobin>(std::move(args));
  }

  absl::string_view name() const override { return kRoundRobinPolicyName; }

  absl::StatusOr<RefCountedPtr<LoadBalancingPolicy::Config>>
  ParseLoadBalancingConfig(const grpc_core::Json& json) const override {
    return grpc_core::LoadRefCountedFromJson<RoundRobinConfig>(
        json, grpc_core::JsonArgs(),
        "errors validating lbkit_round_robin LB policy config");
  }
};

}  // namespace

void RegisterRoundRobin(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<RoundRobinFactory>());
}

}  // namespace lbkit::policies
