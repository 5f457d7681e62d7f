#include "policies/outlier_ejection/outlier_ejection.h"

#include <algorithm>
#include <atomic>
#include <bitset>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "absl/types/variant.h"
#include "algorithms/outlier_ejection.h"
#include "algorithms/random.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "policies/common/endpoint_list.h"
#include "policies/common/health_check.h"
#include "policies/common/parent_policy.h"
#include "policies/common/policy_timer.h"
#include "policies/common/trace.h"
#include "policies/common/policy_factory.h"
#include "policies/common/serving_count.h"
#include "policies/register.h"
#include "stats/stats.h"
#include "src/core/lib/address_utils/sockaddr_utils.h"
#include "src/core/lib/channel/status_util.h"
#include "src/core/lib/gprpp/time.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"
#include "src/core/lib/load_balancing/subchannel_interface.h"

namespace lbkit::policies {

namespace {

using grpc_core::Duration;
using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;
using grpc_core::ValidationErrors;
using grpc_event_engine::experimental::EventEngine;

constexpr absl::string_view kDefaultChildPolicy = R"([{"lbkit_round_robin": {}}])";
constexpr grpc_status_code kDefaultErrorCodes[] = {
    GRPC_STATUS_UNAVAILABLE, GRPC_STATUS_INTERNAL, GRPC_STATUS_UNKNOWN,
    GRPC_STATUS_DATA_LOSS, GRPC_STATUS_DEADLINE_EXCEEDED};
constexpr size_t kNumCodes = 17;

//
// Config
//

struct SuccessRateJson {
  uint32_t stdev_factor = 1900;
  uint32_t enforcement_percentage = 100;
  uint32_t minimum_hosts = 5;
  uint32_t request_volume = 100;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<SuccessRateJson>()
            .OptionalField("stdevFactor", &SuccessRateJson::stdev_factor)
            .OptionalField("enforcementPercentage", &SuccessRateJson::enforcement_percentage)
            .OptionalField("minimumHosts", &SuccessRateJson::minimum_hosts)
            .OptionalField("requestVolume", &SuccessRateJson::request_volume)
            .Finish();
    return loader;
  }
  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&, ValidationErrors* errors) {
    ValidationErrors::ScopedField field(errors, ".enforcementPercentage");
    if (!errors->FieldHasErrors() && enforcement_percentage > 100) {
      errors->AddError("must be a percentage in [0, 100]");
    }
  }
};

struct FailurePercentageJson {
  uint32_t threshold = 85;
  uint32_t enforcement_percentage = 100;
  uint32_t minimum_hosts = 5;
  uint32_t request_volume = 50;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<FailurePercentageJson>()
            .OptionalField("threshold", &FailurePercentageJson::threshold)
            .OptionalField("enforcementPercentage",
                           &FailurePercentageJson::enforcement_percentage)
            .OptionalField("minimumHosts", &FailurePercentageJson::minimum_hosts)
            .OptionalField("requestVolume", &FailurePercentageJson::request_volume)
            .Finish();
    return loader;
  }
  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&, ValidationErrors* errors) {
    for (auto [name, value] : {std::pair<const char*, uint32_t>{".threshold", threshold},
                               {".enforcementPercentage", enforcement_percentage}}) {
      ValidationErrors::ScopedField field(errors, name);
      if (!errors->FieldHasErrors() && value > 100) {
        errors->AddError("must be a percentage in [0, 100]");
      }
    }
  }
};

struct OutlierParams {
  uint32_t consecutive_5xx = 5;
  absl::optional<std::vector<std::string>> error_status_codes;
  uint32_t consecutive_gateway = 0;
  uint32_t consecutive_local = 5;
  bool split_local = false;
  Duration interval = Duration::Seconds(10);
  Duration base_ejection = Duration::Seconds(30);
  absl::optional<Duration> max_ejection;
  uint32_t max_ejection_percent = 10;
  uint32_t min_health_percent = 0;
  absl::optional<SuccessRateJson> success_rate;
  absl::optional<FailurePercentageJson> failure_percentage;

  // Derived in JsonPostLoad.
  RefCountedPtr<LoadBalancingPolicy::Config> child_policy;
  algorithms::OutlierConfig config;
  std::bitset<kNumCodes> error_codes;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<OutlierParams>()
            .OptionalField("consecutive5xxErrors", &OutlierParams::consecutive_5xx)
            .OptionalField("errorStatusCodes", &OutlierParams::error_status_codes)
            .OptionalField("consecutiveGatewayErrors", &OutlierParams::consecutive_gateway)
            .OptionalField("consecutiveLocalOriginFailures", &OutlierParams::consecutive_local)
            .OptionalField("splitExternalLocalOriginErrors", &OutlierParams::split_local)
            .OptionalField("interval", &OutlierParams::interval)
            .OptionalField("baseEjectionTime", &OutlierParams::base_ejection)
            .OptionalField("maxEjectionTime", &OutlierParams::max_ejection)
            .OptionalField("maxEjectionPercent", &OutlierParams::max_ejection_percent)
            .OptionalField("minHealthPercent", &OutlierParams::min_health_percent)
            .OptionalField("successRateEjection", &OutlierParams::success_rate)
            .OptionalField("failurePercentageEjection", &OutlierParams::failure_percentage)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json& json, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    child_policy = ParseChildPolicyField(json, kDefaultChildPolicy, errors);
    if (error_status_codes.has_value()) {
      for (size_t i = 0; i < error_status_codes->size(); ++i) {
        ValidationErrors::ScopedField field(errors, absl::StrCat(".errorStatusCodes[", i, "]"));
        grpc_status_code code;
        if (!grpc_status_code_from_string((*error_status_codes)[i].c_str(), &code)) {
          errors->AddError("is not a gRPC status code name (e.g. UNAVAILABLE)");
        } else if (code == GRPC_STATUS_OK) {
          errors->AddError("OK cannot be an error");
        } else {
          error_codes.set(code);
        }
      }
    } else {
      for (grpc_status_code code : kDefaultErrorCodes) error_codes.set(code);
    }
    for (auto [name, value] : {std::pair<const char*, Duration>{".interval", interval},
                               {".baseEjectionTime", base_ejection}}) {
      ValidationErrors::ScopedField field(errors, name);
      if (!errors->FieldHasErrors() && value <= Duration::Zero()) {
        errors->AddError("must be greater than 0");
      }
    }
    {
      ValidationErrors::ScopedField field(errors, ".maxEjectionTime");
      if (!errors->FieldHasErrors() && max_ejection.has_value() &&
          *max_ejection < Duration::Zero()) {
        errors->AddError("must not be negative");
      }
    }
    for (auto [name, value] :
         {std::pair<const char*, uint32_t>{".maxEjectionPercent", max_ejection_percent},
          {".minHealthPercent", min_health_percent}}) {
      ValidationErrors::ScopedField field(errors, name);
      if (!errors->FieldHasErrors() && value > 100) {
        errors->AddError("must be a percentage in [0, 100]");
      }
    }
    config.consecutive_errors = consecutive_5xx;
    config.consecutive_gateway_errors = consecutive_gateway;
    config.consecutive_local_origin_failures = consecutive_local;
    config.split_local_origin = split_local;
    config.max_ejection_percent = max_ejection_percent;
    config.min_health_percent = min_health_percent;
    config.base_ejection_ms = base_ejection.millis();
    config.max_ejection_ms =
        std::max(base_ejection, max_ejection.value_or(Duration::Seconds(300))).millis();
    if (success_rate.has_value()) {
      config.success_rate = algorithms::OutlierConfig::SuccessRate{
          success_rate->stdev_factor, success_rate->enforcement_percentage,
          success_rate->minimum_hosts, success_rate->request_volume};
    }
    if (failure_percentage.has_value()) {
      config.failure_percentage = algorithms::OutlierConfig::FailurePercentage{
          failure_percentage->threshold, failure_percentage->enforcement_percentage,
          failure_percentage->minimum_hosts, failure_percentage->request_volume};
    }
  }
};

// What the call path needs of the config, shared with call trackers.
struct Classifier : public grpc_core::RefCounted<Classifier> {
  algorithms::OutlierConfig config;
  std::bitset<kNumCodes> error_codes;

  algorithms::CallResult Classify(absl::StatusCode code) const {
    if (code == absl::StatusCode::kOk) return algorithms::CallResult::Success();
    const auto c = static_cast<size_t>(code);
    if (c < kNumCodes && error_codes.test(c)) {
      return algorithms::CallResult::Error(code == absl::StatusCode::kUnavailable);
    }
    return algorithms::CallResult::OtherFailure();
  }
};

//
// Per-endpoint state, the call path's way back to the policy, and the
// subchannel wrapping that makes an ejected endpoint look failed.
//

class EjectingWatcher;

struct EndpointState : public grpc_core::RefCounted<EndpointState> {
  EndpointState(std::string address_text, EventEngine* engine,
                std::shared_ptr<grpc_core::WorkSerializer> serializer)
      : address(std::move(address_text)),
        stats(stats::EndpointStats::Create(address, "",
                                                     std::map<std::string, std::string>{}, 1)),
        uneject_timer(engine, std::move(serializer)) {}

  const std::string address;
  // Its ejection as lbkit::DumpState() and the metrics show it.
  const std::shared_ptr<stats::EndpointStats> stats;
  // Subchannel wrappers using this state. A child can keep a subchannel of
  // an address the resolver dropped and bring it back later: its state must
  // still be the one in the policy's map (wrappers die on any thread).
  std::atomic<int> wrappers{0};
  bool listed = true;  // in the resolver's latest list
  algorithms::OutlierCounters counters;  // any thread
  // A call was routed here since the last connection failure that counted
  // (set by the picker, any thread). A connection failure counts as a
  // local-origin failure only then: an address no call goes to (never
  // reachable, a pod being replaced) is not an outlier, and must not spend
  // the ejection budget (README, "Outlier ejection").
  std::atomic<bool> picked{false};
  // WorkSerializer only:
  grpc_connectivity_state connectivity = GRPC_CHANNEL_IDLE;  // the real one
  bool ejected = false;
  uint32_t times_ejected = 0;
  // Not ejected at any time since the last interval tick: the next tick
  // may forgive one step of times_ejected (Envoy forgives only after a full
  // interval back in).
  bool in_since_last_tick = true;
  // Cancelled before the state leaves the policy's map.
  PolicyTimer uneject_timer;
  std::set<EjectingWatcher*> watchers;
};

class OutlierPolicy;

// Lets call trackers, watchers and timers reach the policy on its
// WorkSerializer, and only while it is alive.
class PolicyLink : public grpc_core::RefCounted<PolicyLink> {
 public:
  PolicyLink(OutlierPolicy* policy, std::shared_ptr<grpc_core::WorkSerializer> serializer)
      : policy_(policy), serializer_(std::move(serializer)) {}

  // Any thread: runs `fn(policy)` on the WorkSerializer unless the policy
  // has shut down by then.
  template <typename F>
  void Post(F fn) {
    internal::RunOnWorkSerializer(serializer_, [self = Ref(), fn]() {
      if (self->policy_ != nullptr) fn(self->policy_);
    });
  }

  // WorkSerializer: the policy is gone for everything still queued.
  void DetachLocked() { policy_ = nullptr; }
  OutlierPolicy* policy() const { return policy_; }

 private:
  OutlierPolicy* policy_;  // WorkSerializer only
  const std::shared_ptr<grpc_core::WorkSerializer> serializer_;
};

class EjectingWatcher : public SubchannelInterface::ConnectivityStateWatcherInterface {
 public:
  EjectingWatcher(RefCountedPtr<EndpointState> state, RefCountedPtr<PolicyLink> link,
                  std::unique_ptr<ConnectivityStateWatcherInterface> inner)
      : state_(std::move(state)), link_(std::move(link)), inner_(std::move(inner)) {}

  void OnConnectivityStateChange(grpc_connectivity_state new_state,
                                 absl::Status status) override;

  grpc_pollset_set* interested_parties() override { return inner_->interested_parties(); }

  // WorkSerializer: the endpoint was ejected / is back.
  void Eject() {
    if (seen_) {
      inner_->OnConnectivityStateChange(
          GRPC_CHANNEL_TRANSIENT_FAILURE,
          absl::UnavailableError(absl::StrCat("lbkit_outlier_ejection: endpoint ",
                                              state_->address, " is ejected")));
    }
  }
  void Uneject() {
    if (seen_) inner_->OnConnectivityStateChange(last_state_, last_status_);
  }
  void Cancel() { cancelled_ = true; }

 private:
  RefCountedPtr<EndpointState> state_;
  RefCountedPtr<PolicyLink> link_;
  std::unique_ptr<ConnectivityStateWatcherInterface> inner_;
  bool seen_ = false;
  bool cancelled_ = false;
  grpc_connectivity_state last_state_ = GRPC_CHANNEL_IDLE;
  absl::Status last_status_;
};

class EjectingSubchannel : public grpc_core::DelegatingSubchannel {
 public:
  static constexpr char kKind = 0;  // ChildPolicy::Wrapping's tag

  EjectingSubchannel(RefCountedPtr<SubchannelInterface> subchannel,
                     RefCountedPtr<EndpointState> state, RefCountedPtr<PolicyLink> link)
      : DelegatingSubchannel(std::move(subchannel)),
        state_(std::move(state)),
        link_(std::move(link)) {
    state_->wrappers.fetch_add(1);
  }
  ~EjectingSubchannel() override { state_->wrappers.fetch_sub(1); }

  void WatchConnectivityState(
      std::unique_ptr<ConnectivityStateWatcherInterface> watcher) override {
    ConnectivityStateWatcherInterface* key = watcher.get();
    auto ejecting = std::make_unique<EjectingWatcher>(state_, link_, std::move(watcher));
    watchers_[key] = ejecting.get();
    state_->watchers.insert(ejecting.get());
    wrapped_subchannel()->WatchConnectivityState(std::move(ejecting));
  }

  void CancelConnectivityStateWatch(ConnectivityStateWatcherInterface* watcher) override {
    auto it = watchers_.find(watcher);
    if (it == watchers_.end()) return;
    EjectingWatcher* ejecting = it->second;
    ejecting->Cancel();
    state_->watchers.erase(ejecting);
    watchers_.erase(it);
    wrapped_subchannel()->CancelConnectivityStateWatch(ejecting);
  }

  const RefCountedPtr<EndpointState>& state() const { return state_; }

 private:
  RefCountedPtr<EndpointState> state_;
  RefCountedPtr<PolicyLink> link_;
  std::map<ConnectivityStateWatcherInterface*, EjectingWatcher*> watchers_;
};

//
// The call path: a tracker per call, and the picker that attaches it.
//

class OutlierTracker : public LoadBalancingPolicy::SubchannelCallTrackerInterface {
 public:
  OutlierTracker(std::unique_ptr<SubchannelCallTrackerInterface> inner,
                 RefCountedPtr<EndpointState> state, RefCountedPtr<Classifier> classifier,
                 RefCountedPtr<PolicyLink> link)
      : inner_(std::move(inner)),
        state_(std::move(state)),
        classifier_(std::move(classifier)),
        link_(std::move(link)) {}

  // A pick that never started says nothing about the endpoint: the channel
  // re-queues picks whose connection just went (the connection failure
  // itself is counted from the subchannel's state), and a parent (a circuit
  // breaker) may drop a pick after the child made it.

  void Start() override {
    state_->counters.RecordConnected();
    if (inner_ != nullptr) inner_->Start();
  }

  void Finish(FinishArgs args) override {
    const absl::StatusCode code = args.status.code();
    if (inner_ != nullptr) inner_->Finish(std::move(args));
    Record(classifier_->Classify(code));
  }

 private:
  void Record(const algorithms::CallResult& result);

  std::unique_ptr<SubchannelCallTrackerInterface> inner_;
  RefCountedPtr<EndpointState> state_;
  RefCountedPtr<Classifier> classifier_;
  RefCountedPtr<PolicyLink> link_;
};

class OutlierPicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  OutlierPicker(std::shared_ptr<SubchannelPicker> child, RefCountedPtr<Classifier> classifier,
                RefCountedPtr<PolicyLink> link)
      : child_(std::move(child)), classifier_(std::move(classifier)), link_(std::move(link)) {}

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    EjectingSubchannel* subchannel;
    LoadBalancingPolicy::PickResult result = ChildPolicy::UnwrapTo(child_->Pick(args), &subchannel);
    if (subchannel != nullptr) {
      auto& complete = absl::get<LoadBalancingPolicy::PickResult::Complete>(result.result);
      std::atomic<bool>& picked = subchannel->state()->picked;
      if (!picked.load(std::memory_order_relaxed)) picked.store(true, std::memory_order_relaxed);
      complete.subchannel_call_tracker = std::make_unique<OutlierTracker>(
          std::move(complete.subchannel_call_tracker), subchannel->state(), classifier_, link_);
    }
    return result;
  }
  // Ejected endpoints look failed to the child, so its count leaves them out.
  std::optional<size_t> ServingEndpoints() const override { return serving_; }

 private:
  const std::shared_ptr<SubchannelPicker> child_;
  const std::optional<size_t> serving_ = ServingEndpointsOf(child_.get());
  const RefCountedPtr<Classifier> classifier_;
  const RefCountedPtr<PolicyLink> link_;
};

//
// The policy
//

class OutlierPolicy : public ParentPolicy {
 public:
  explicit OutlierPolicy(Args args)
      : ParentPolicy(std::move(args), kOutlierEjectionPolicyName),
        link_(grpc_core::MakeRefCounted<PolicyLink>(this, work_serializer())),
        interval_timer_(channel_control_helper()->GetEventEngine(), work_serializer()) {}

  // A run of consecutive errors (or connection failures) on `state`.
  void OnConsecutiveErrorsLocked(EndpointState* state) {
    MaybeEjectLocked(state, "consecutive errors");
  }
  void OnEjectedEndpointConnectedLocked(EndpointState* state);
  void OnConnectionFailedLocked(EndpointState* state) {
    if (state->counters.Record(algorithms::CallResult::LocalFailure(), classifier_->config)) {
      MaybeEjectLocked(state, "consecutive connection failures");
    }
  }

 private:
  static std::string Key(const grpc_core::ServerAddress& address) { return AddressText(address); }
  const OutlierParams& params() const { return ParamsOf<OutlierParams>(config()); }

  RefCountedPtr<EndpointState> StateFor(const grpc_core::ServerAddress& address) {
    const std::string key = Key(address);
    auto& state = states_[key];
    if (state == nullptr) {
      state = grpc_core::MakeRefCounted<EndpointState>(
          key, channel_control_helper()->GetEventEngine(), work_serializer());
    }
    state->listed = true;
    return state;
  }

  // The child's subchannels get the ejecting wrappers.
  ChildPolicy::Wrapping SubchannelWrapping() override {
    return {[this](const grpc_core::ServerAddress& address,
                   RefCountedPtr<SubchannelInterface> subchannel)
                -> RefCountedPtr<grpc_core::DelegatingSubchannel> {
              return grpc_core::MakeRefCounted<EjectingSubchannel>(std::move(subchannel),
                                                                   StateFor(address), link_);
            },
            &EjectingSubchannel::kKind};
  }
  void OnConfigLocked() override;
  absl::StatusOr<ChildSpecs> ChildrenForLocked(const AddressUpdate& update) override;
  PickerUpdate MakePickerLocked() override;
  void OnShutdownLocked() override;

  // Connected ejected endpoints other than `except`, and listed endpoints.
  std::pair<size_t, size_t> EjectedAndListed(const EndpointState* except) const;
  void MaybeEjectLocked(EndpointState* state, absl::string_view reason);
  void UnejectLocked(EndpointState* state);
  void OnIntervalLocked();
  // Calls `notify` on each of the endpoint's watchers. A child answering one
  // may cancel (and free) another, e.g. a child policy being replaced, so
  // each is looked up again before it is called.
  void NotifyWatchersLocked(EndpointState* state, void (EjectingWatcher::*notify)()) {
    const std::vector<EjectingWatcher*> watchers(state->watchers.begin(), state->watchers.end());
    for (EjectingWatcher* w : watchers) {
      if (state->watchers.count(w) != 0) (w->*notify)();
    }
  }
  void ArmIntervalTimerLocked() {
    interval_timer_.ArmLocked(interval_, [this] { OnIntervalLocked(); });
  }

  RefCountedPtr<PolicyLink> link_;
  RefCountedPtr<Classifier> classifier_;
  std::map<std::string, RefCountedPtr<EndpointState>> states_;
  PolicyTimer interval_timer_;
  Duration interval_;
};

void EjectingWatcher::OnConnectivityStateChange(grpc_connectivity_state new_state,
                                                absl::Status status) {
  if (cancelled_) {
    inner_->OnConnectivityStateChange(new_state, std::move(status));
    return;
  }
  const grpc_connectivity_state previous = last_state_;
  seen_ = true;
  last_state_ = new_state;
  last_status_ = status;
  state_->connectivity = new_state;
  if (!state_->ejected) inner_->OnConnectivityStateChange(new_state, std::move(status));
  // A failed connection is a local-origin failure if a call was routed here
  // since the last one counted (after passing the state on: an ejection now
  // reaches the child after it).
  OutlierPolicy* policy = link_->policy();
  if (new_state == GRPC_CHANNEL_READY && previous != GRPC_CHANNEL_READY && policy != nullptr &&
      state_->ejected) {
    policy->OnEjectedEndpointConnectedLocked(state_.get());
  }
  if (new_state == GRPC_CHANNEL_TRANSIENT_FAILURE &&
      previous != GRPC_CHANNEL_TRANSIENT_FAILURE && policy != nullptr && !state_->ejected &&
      state_->picked.exchange(false, std::memory_order_relaxed)) {
    policy->OnConnectionFailedLocked(state_.get());
  }
}

void OutlierTracker::Record(const algorithms::CallResult& result) {
  if (state_->counters.Record(result, classifier_->config)) {
    link_->Post([state = state_](OutlierPolicy* policy) {
      policy->OnConsecutiveErrorsLocked(state.get());
    });
  }
}

void OutlierPolicy::OnConfigLocked() {
  auto classifier = grpc_core::MakeRefCounted<Classifier>();
  classifier->config = params().config;
  classifier->error_codes = params().error_codes;
  classifier_ = std::move(classifier);
  if (!algorithms::EjectionEnabled(params().config)) {
    // Nothing can eject any more: whoever is out comes back now, as gRPC's
    // outlier_detection does, and no interval runs.
    interval_timer_.CancelLocked();
    for (auto& [key, state] : states_) {
      state->uneject_timer.CancelLocked();
      state->times_ejected = 0;
      UnejectLocked(state.get());
    }
  } else if (!interval_timer_.armed() || interval_ != params().interval) {
    interval_ = params().interval;
    ArmIntervalTimerLocked();
  }
}

absl::StatusOr<ParentPolicy::ChildSpecs> OutlierPolicy::ChildrenForLocked(
    const AddressUpdate& update) {
  // Endpoints that left: forget their history (and any ejection), unless a
  // child still holds a subchannel for them.
  std::set<std::string> keep;
  for (const auto& address : update.addresses) keep.insert(Key(address));
  for (auto it = states_.begin(); it != states_.end();) {
    it->second->listed = keep.count(it->first) != 0;
    if (!it->second->listed && it->second->wrappers.load() == 0) {
      it->second->uneject_timer.CancelLocked();
      it = states_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& address : update.addresses) StateFor(address);
  std::vector<std::shared_ptr<stats::EndpointStats>> listed;
  // Only the resolver's endpoints: a state kept for a child's lingering
  // subchannel is not an endpoint of the channel any more.
  for (const auto& [key, state] : states_) {
    if (state->listed) listed.push_back(state->stats);
  }
  policy_stats()->SetEndpoints(std::move(listed));
  ChildSpecs specs;
  specs[std::string(kOutlierEjectionPolicyName)] = {std::string(kOutlierEjectionPolicyName),
                                                    update.addresses, params().child_policy};
  return specs;
}

ParentPolicy::PickerUpdate OutlierPolicy::MakePickerLocked() {
  const ChildPolicy* c = child(std::string(kOutlierEjectionPolicyName));
  if (c == nullptr || c->picker() == nullptr) return {};
  return {c->state(), c->status(), std::make_unique<OutlierPicker>(c->picker(), classifier_, link_)};
}

std::pair<size_t, size_t> OutlierPolicy::EjectedAndListed(const EndpointState* except) const {
  // The budget counts the ejected endpoints that could serve: ejecting one
  // whose connection is down anyway takes no capacity away.
  size_t ejected = 0, listed = 0;
  for (const auto& [key, s] : states_) {
    if (!s->listed) continue;
    ++listed;
    ejected += s.get() != except && s->ejected && s->connectivity == GRPC_CHANNEL_READY;
  }
  return {ejected, listed};
}

// An ejected endpoint connected again. The budget counts connected ejected
// endpoints only: one ejected while disconnected did not use it, and may now
// exceed it; then it comes back rather than take more than
// maxEjectionPercent of the endpoints out of service.
void OutlierPolicy::OnEjectedEndpointConnectedLocked(EndpointState* state) {
  const auto [others, listed] = EjectedAndListed(state);
  if (algorithms::MayEject(others, listed, params().config)) return;
  gpr_log(GPR_INFO,
          "lbkit_outlier_ejection: %s connected again while ejected; back early, since "
          "%zu of %zu connected endpoints are already ejected",
          state->address.c_str(), others, listed);
  state->uneject_timer.CancelLocked();
  UnejectLocked(state);
}

void OutlierPolicy::MaybeEjectLocked(EndpointState* state, absl::string_view reason) {
  auto it = states_.find(state->address);
  if (it == states_.end() || it->second.get() != state || state->ejected) return;
  const OutlierParams& params = this->params();
  const auto [ejected, listed] = EjectedAndListed(nullptr);
  if (!algorithms::MayEject(ejected, listed, params.config)) {
    LBKIT_TRACE(kOutlierEjectionPolicyName, this, "%s: not ejected (%s): %zu of %zu already are",
                state->address.c_str(), std::string(reason).c_str(), ejected, listed);
    return;
  }
  state->ejected = true;
  ++state->times_ejected;
  state->counters.Reset();
  const int64_t ms = algorithms::EjectionMs(state->times_ejected, params.config);
  gpr_log(GPR_INFO, "lbkit_outlier_ejection: ejected %s for %lld ms (%s; ejection %u)",
          state->address.c_str(), static_cast<long long>(ms), std::string(reason).c_str(),
          state->times_ejected);
  state->stats->SetEjected(
      true,
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
              .count() +
          ms,
      state->times_ejected);
  state->uneject_timer.ArmLocked(Duration::Milliseconds(ms),
                                 [this, state] { UnejectLocked(state); });
  NotifyWatchersLocked(state, &EjectingWatcher::Eject);
}

void OutlierPolicy::UnejectLocked(EndpointState* state) {
  if (!state->ejected) return;
  state->ejected = false;
  state->in_since_last_tick = false;
  state->counters.Reset();
  state->stats->SetEjected(false, 0, state->times_ejected);
  gpr_log(GPR_INFO, "lbkit_outlier_ejection: %s is back", state->address.c_str());
  NotifyWatchersLocked(state, &EjectingWatcher::Uneject);
}

void OutlierPolicy::OnIntervalLocked() {
  ArmIntervalTimerLocked();
  const OutlierParams& params = this->params();
  std::vector<EndpointState*> order;
  std::vector<algorithms::IntervalStats> stats;
  for (const auto& [key, s] : states_) {
    if (!s->listed) continue;
    const auto [success, failure] = s->counters.TakeInterval();
    order.push_back(s.get());
    stats.push_back({success, failure, s->ejected});
    // gRFC A50: an endpoint that stayed in for an interval earns back one
    // step of its ejection multiplier. A whole interval: one that came back
    // since the last tick (even at this very instant, when the un-ejection
    // and the tick fall due together) has not earned it yet.
    if (!s->ejected) {
      if (s->in_since_last_tick && s->times_ejected > 0) --s->times_ejected;
      s->in_since_last_tick = true;
    }
  }
  const std::vector<size_t> to_eject = algorithms::SweepInterval(
      stats, params.config, [] { return static_cast<uint32_t>(algorithms::UniformIndex(100)); });
  LBKIT_TRACE(kOutlierEjectionPolicyName, this, "interval: %zu endpoints swept, %zu outliers",
              order.size(), to_eject.size());
  for (size_t i : to_eject) MaybeEjectLocked(order[i], "success rate or failure percentage");
}

void OutlierPolicy::OnShutdownLocked() {
  link_->DetachLocked();
  interval_timer_.CancelLocked();
  for (auto& [key, state] : states_) state->uneject_timer.CancelLocked();
  states_.clear();
}

}  // namespace

void RegisterOutlierEjection(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<OutlierPolicy, OutlierParams>>(
          kOutlierEjectionPolicyName));
}

}  // namespace lbkit::policies
