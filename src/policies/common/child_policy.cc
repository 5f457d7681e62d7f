#include "policies/common/child_policy.h"

#include <map>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "policies/common/serving_count.h"
#include "src/core/ext/filters/client_channel/lb_policy/child_policy_handler.h"
#include "src/core/lib/address_utils/sockaddr_utils.h"
#include "src/core/lib/config/core_configuration.h"
#include "src/core/lib/debug/trace.h"
#include "src/core/lib/iomgr/pollset_set.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"
#include "src/core/lib/load_balancing/subchannel_interface.h"

#include "absl/status/statusor.h"
#include "absl/types/variant.h"

namespace lbkit::policies {

namespace {

using grpc_core::ChannelArgs;
using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;

// ChildPolicyHandler wants a trace flag; GRPC_TRACE=lbkit_child_policy
// turns on its logging of child creation and updates.
grpc_core::TraceFlag child_policy_trace(false, "lbkit_child_policy");

}  // namespace

RefCountedPtr<LoadBalancingPolicy::Config> ParseChildPolicyField(
    const grpc_core::Json& json, absl::string_view default_json,
    grpc_core::ValidationErrors* errors) {
  grpc_core::ValidationErrors::ScopedField field(errors, ".childPolicy");
  grpc_core::Json child_json;
  if (json.type() == grpc_core::Json::Type::OBJECT) {
    auto it = json.object_value().find("childPolicy");
    if (it != json.object_value().end()) child_json = it->second;
  }
  if (child_json.type() == grpc_core::Json::Type::JSON_NULL) {
    auto parsed = grpc_core::Json::Parse(default_json);
    GPR_ASSERT(parsed.ok());
    child_json = *std::move(parsed);
  }
  auto config = grpc_core::CoreConfiguration::Get()
                    .lb_policy_registry()
                    .ParseLoadBalancingConfig(child_json);
  if (!config.ok()) {
    errors->AddError(config.status().message());
    return nullptr;
  }
  return *std::move(config);
}

//
// Subchannel wrapping: counts this child's READY subchannels.
//

class ChildPolicy::CountingWatcher : public SubchannelInterface::ConnectivityStateWatcherInterface {
 public:
  CountingWatcher(RefCountedPtr<ChildPolicy> child,
                  std::unique_ptr<ConnectivityStateWatcherInterface> watcher)
      : child_(std::move(child)), watcher_(std::move(watcher)) {}

  void OnConnectivityStateChange(grpc_connectivity_state state, absl::Status status) override {
    // A notification queued before the child cancelled the watch can still
    // arrive (docs/grpc-internals.md, "Foundations"): pass it on, as the channel would, but do
    // not count it.
    if (!cancelled_ && !child_->shutdown_) {
      const bool ready = state == GRPC_CHANNEL_READY;
      if (ready != counted_ready_) {
        counted_ready_ = ready;
        ready ? ++child_->connected_ : --child_->connected_;
        child_->OnChangedLocked();
      }
    }
    watcher_->OnConnectivityStateChange(state, std::move(status));
  }

  grpc_pollset_set* interested_parties() override { return watcher_->interested_parties(); }

  // The child cancelled its watch (on the WorkSerializer). Only here, not in
  // a destructor: the channel may destroy a watcher on another thread.
  void Cancel() {
    if (counted_ready_ && !child_->shutdown_) --child_->connected_;
    counted_ready_ = false;
    cancelled_ = true;
  }

 private:
  RefCountedPtr<ChildPolicy> child_;
  std::unique_ptr<ConnectivityStateWatcherInterface> watcher_;
  bool counted_ready_ = false;
  bool cancelled_ = false;
};

class ChildPolicy::CountingSubchannel : public grpc_core::DelegatingSubchannel {
 public:
  CountingSubchannel(RefCountedPtr<SubchannelInterface> subchannel,
                     RefCountedPtr<ChildPolicy> child, const void* kind)
      : DelegatingSubchannel(std::move(subchannel)), child_(std::move(child)), kind_(kind) {}

  // The Wrapping kind of the subchannel this one wraps (null: none).
  const void* kind() const { return kind_; }

  void WatchConnectivityState(
      std::unique_ptr<ConnectivityStateWatcherInterface> watcher) override {
    ConnectivityStateWatcherInterface* key = watcher.get();
    auto counting = std::make_unique<CountingWatcher>(child_, std::move(watcher));
    watchers_[key] = counting.get();
    wrapped_subchannel()->WatchConnectivityState(std::move(counting));
  }

  void CancelConnectivityStateWatch(ConnectivityStateWatcherInterface* watcher) override {
    auto it = watchers_.find(watcher);
    if (it == watchers_.end()) return;
    // The channel may free the watcher once cancelled: last use here.
    it->second->Cancel();
    ConnectivityStateWatcherInterface* counting = it->second;
    watchers_.erase(it);
    wrapped_subchannel()->CancelConnectivityStateWatch(counting);
  }

 private:
  RefCountedPtr<ChildPolicy> child_;
  const void* const kind_;
  // The child's watcher -> the one wrapping it (owned by the channel).
  std::map<ConnectivityStateWatcherInterface*, CountingWatcher*> watchers_;
};

//
// The child's helper: everything goes to the parent's helper, except the
// state, which the parent combines.
//

class ChildPolicy::Helper : public LoadBalancingPolicy::ChannelControlHelper {
 public:
  explicit Helper(RefCountedPtr<ChildPolicy> child) : child_(std::move(child)) {}

  RefCountedPtr<SubchannelInterface> CreateSubchannel(grpc_core::ServerAddress address,
                                                      const ChannelArgs& args) override {
    if (child_->shutdown_) return nullptr;
    auto subchannel = child_->parent_helper_->CreateSubchannel(address, args);
    if (subchannel == nullptr) return nullptr;
    const Wrapping& wrapping = child_->wrapping_;
    if (wrapping.wrap != nullptr) subchannel = wrapping.wrap(address, std::move(subchannel));
    return grpc_core::MakeRefCounted<CountingSubchannel>(std::move(subchannel), child_,
                                                         wrapping.kind);
  }

  void UpdateState(grpc_connectivity_state state, const absl::Status& status,
                   std::unique_ptr<LoadBalancingPolicy::SubchannelPicker> picker) override {
    if (child_->shutdown_) return;
    if (child_->state_ != GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_READY) {
      child_->state_ = state;
    }
    child_->status_ = status;
    child_->picker_serving_ = ServingEndpointsOf(picker.get());
    child_->picker_ = std::shared_ptr<LoadBalancingPolicy::SubchannelPicker>(std::move(picker));
    // A child of a kind that idles (pick_first) is woken at once, as
    // gRPC's weighted_target does: the parent decides where traffic goes.
    if (state == GRPC_CHANNEL_IDLE) child_->policy_->ExitIdleLocked();
    child_->OnChangedLocked();
  }

  void RequestReresolution() override {
    if (!child_->shutdown_) child_->parent_helper_->RequestReresolution();
  }
  absl::string_view GetAuthority() override { return child_->parent_helper_->GetAuthority(); }
  grpc_event_engine::experimental::EventEngine* GetEventEngine() override {
    return child_->parent_helper_->GetEventEngine();
  }
  void AddTraceEvent(TraceSeverity severity, absl::string_view message) override {
    if (!child_->shutdown_) child_->parent_helper_->AddTraceEvent(severity, message);
  }

 private:
  RefCountedPtr<ChildPolicy> child_;
};

//
// ChildPolicy
//

ChildPolicy::ChildPolicy(std::string name, Owner* owner,
                         RefCountedPtr<LoadBalancingPolicy> parent,
                         LoadBalancingPolicy::ChannelControlHelper* parent_helper,
                         std::shared_ptr<grpc_core::WorkSerializer> work_serializer,
                         grpc_pollset_set* parent_interested_parties, const ChannelArgs& args,
                         Wrapping wrapping)
    : name_(std::move(name)),
      owner_(owner),
      parent_(std::move(parent)),
      parent_helper_(parent_helper),
      parent_interested_parties_(parent_interested_parties),
      wrapping_(std::move(wrapping)) {
  LoadBalancingPolicy::Args child_args;
  child_args.work_serializer = std::move(work_serializer);
  child_args.args = args;
  child_args.channel_control_helper = std::make_unique<Helper>(Ref(DEBUG_LOCATION, "Helper"));
  policy_ = grpc_core::MakeOrphanable<grpc_core::ChildPolicyHandler>(std::move(child_args),
                                                                     &child_policy_trace);
  // The child's subchannels and timers poll through the parent's pollset.
  grpc_pollset_set_add_pollset_set(policy_->interested_parties(), parent_interested_parties_);
}

ChildPolicy::~ChildPolicy() = default;

void ChildPolicy::Orphan() {
  shutdown_ = true;
  grpc_pollset_set_del_pollset_set(policy_->interested_parties(), parent_interested_parties_);
  policy_.reset();
  picker_.reset();
  Unref(DEBUG_LOCATION, "Orphan");
}

absl::Status ChildPolicy::UpdateLocked(
    grpc_core::ServerAddressList addresses,
    RefCountedPtr<LoadBalancingPolicy::Config> config, const ChannelArgs& args,
    std::string resolution_note) {
  // Addresses listed twice are one endpoint to the child.
  std::set<std::string> distinct;
  for (const auto& address : addresses) {
    auto text = grpc_sockaddr_to_string(&address.address(), /*normalize=*/false);
    distinct.insert(text.ok() ? *text : std::string());
  }
  total_ = distinct.size();
  LoadBalancingPolicy::UpdateArgs update;
  update.addresses = std::move(addresses);
  update.config = std::move(config);
  update.args = args;
  update.resolution_note = std::move(resolution_note);
  return policy_->UpdateLocked(std::move(update));
}

void ChildPolicy::ExitIdleLocked() { policy_->ExitIdleLocked(); }
void ChildPolicy::ResetBackoffLocked() { policy_->ResetBackoffLocked(); }

void ChildPolicy::OnChangedLocked() {
  if (!shutdown_) owner_->OnChildChangedLocked();
}

LoadBalancingPolicy::PickResult ChildPolicy::Unwrap(LoadBalancingPolicy::PickResult result) {
  const void* kind;
  Peel(&result, &kind);
  return result;
}

SubchannelInterface* ChildPolicy::Peel(LoadBalancingPolicy::PickResult* result,
                                       const void** kind) {
  auto* complete = absl::get_if<LoadBalancingPolicy::PickResult::Complete>(&result->result);
  if (complete == nullptr) return nullptr;
  // Every subchannel a child has came from this file's
  // Helper::CreateSubchannel, which makes only CountingSubchannels.
  auto* counting = static_cast<CountingSubchannel*>(complete->subchannel.get());
  *kind = counting->kind();
  complete->subchannel = counting->wrapped_subchannel();
  return complete->subchannel.get();
}

void ChildPolicy::PeelTo(LoadBalancingPolicy::PickResult* result,
                         RefCountedPtr<SubchannelInterface> subchannel) {
  absl::get<LoadBalancingPolicy::PickResult::Complete>(result->result).subchannel =
      std::move(subchannel);
}

}  // namespace lbkit::policies
