#include "policies/circuit_breaker/circuit_breaker.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/variant.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "policies/common/endpoint_list.h"
#include "policies/common/parent_policy.h"
#include "policies/common/policy_factory.h"
#include "policies/common/serving_count.h"
#include "policies/register.h"
#include "src/core/lib/address_utils/sockaddr_utils.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"
#include "src/core/lib/load_balancing/subchannel_interface.h"
#include "stats/stats.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::SubchannelInterface;
using grpc_core::ValidationErrors;

constexpr absl::string_view kDefaultChildPolicy = R"([{"lbkit_round_robin": {}}])";

struct CircuitBreakerParams {
  // Envoy's default max_requests.
  uint32_t max_concurrent_requests = 1024;
  uint32_t max_requests_per_endpoint = 0;  // off
  RefCountedPtr<LoadBalancingPolicy::Config> child_policy;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<CircuitBreakerParams>()
            .OptionalField("maxConcurrentRequests",
                           &CircuitBreakerParams::max_concurrent_requests)
            .OptionalField("maxRequestsPerEndpoint",
                           &CircuitBreakerParams::max_requests_per_endpoint)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json& json, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    child_policy = ParseChildPolicyField(json, kDefaultChildPolicy, errors);
    ValidationErrors::ScopedField field(errors, ".maxConcurrentRequests");
    if (!errors->FieldHasErrors() && max_concurrent_requests < 1) {
      errors->AddError("must be at least 1");
    }
  }
};

// Calls in flight, shared by every picker generation and the call trackers.
struct InFlight : public grpc_core::RefCounted<InFlight> {
  std::atomic<int64_t> count{0};
};

// The channel's subchannel, with the in-flight count of its address.
class LimitedSubchannel : public grpc_core::DelegatingSubchannel {
 public:
  static constexpr char kKind = 0;  // ChildPolicy::Wrapping's tag

  LimitedSubchannel(RefCountedPtr<SubchannelInterface> subchannel, RefCountedPtr<InFlight> count)
      : DelegatingSubchannel(std::move(subchannel)), count_(std::move(count)) {}
  const RefCountedPtr<InFlight>& count() const { return count_; }

 private:
  RefCountedPtr<InFlight> count_;
};

// Holds an admitted call's places until the call ends (or never starts).
class LimitTracker : public LoadBalancingPolicy::SubchannelCallTrackerInterface {
 public:
  LimitTracker(std::unique_ptr<SubchannelCallTrackerInterface> inner, RefCountedPtr<InFlight> total,
               RefCountedPtr<InFlight> endpoint)
      : inner_(std::move(inner)), total_(std::move(total)), endpoint_(std::move(endpoint)) {}
  ~LimitTracker() override {
    total_->count.fetch_sub(1, std::memory_order_relaxed);
    endpoint_->count.fetch_sub(1, std::memory_order_relaxed);
  }
  void Start() override {
    if (inner_ != nullptr) inner_->Start();
  }
  void Finish(FinishArgs args) override {
    if (inner_ != nullptr) inner_->Finish(std::move(args));
  }

 private:
  std::unique_ptr<SubchannelCallTrackerInterface> inner_;
  RefCountedPtr<InFlight> total_;
  RefCountedPtr<InFlight> endpoint_;
};

class BreakerPicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  BreakerPicker(std::shared_ptr<SubchannelPicker> child, RefCountedPtr<InFlight> total,
                uint32_t max_total, uint32_t max_per_endpoint,
                std::shared_ptr<stats::PolicyStats> stats)
      : child_(std::move(child)),
        total_(std::move(total)),
        max_total_(max_total),
        max_per_endpoint_(max_per_endpoint),
        stats_(std::move(stats)) {}

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    // Admission on the total first (one atomic add; undone when over), so a
    // full breaker costs no child pick.
    if (total_->count.fetch_add(1, std::memory_order_relaxed) >= max_total_) {
      total_->count.fetch_sub(1, std::memory_order_relaxed);
      return Overflow(absl::StrCat(max_total_, " calls in flight on the channel, the "
                                               "maxConcurrentRequests limit"));
    }
    LimitedSubchannel* subchannel;
    LoadBalancingPolicy::PickResult result = ChildPolicy::UnwrapTo(child_->Pick(args), &subchannel);
    if (subchannel == nullptr) {
      total_->count.fetch_sub(1, std::memory_order_relaxed);
      return result;
    }
    auto* complete = absl::get_if<LoadBalancingPolicy::PickResult::Complete>(&result.result);
    const int64_t on_endpoint =
        subchannel->count()->count.fetch_add(1, std::memory_order_relaxed);
    if (max_per_endpoint_ > 0 && on_endpoint >= max_per_endpoint_) {
      subchannel->count()->count.fetch_sub(1, std::memory_order_relaxed);
      total_->count.fetch_sub(1, std::memory_order_relaxed);
      return Overflow(absl::StrCat(max_per_endpoint_,
                                   " calls in flight on the endpoint, the "
                                   "maxRequestsPerEndpoint limit"));
    }
    complete->subchannel_call_tracker = std::make_unique<LimitTracker>(
        std::move(complete->subchannel_call_tracker), total_, subchannel->count());
    return result;
  }

  std::optional<size_t> ServingEndpoints() const override { return serving_; }

 private:
  // Fails the call at once, wait_for_ready or not, and unretried: a drop.
  LoadBalancingPolicy::PickResult Overflow(std::string why) {
    stats_->CountDrop();
    return LoadBalancingPolicy::PickResult::Drop(
        absl::ResourceExhaustedError(absl::StrCat("lbkit_circuit_breaker: ", why)));
  }

  const std::shared_ptr<SubchannelPicker> child_;
  const std::optional<size_t> serving_ = ServingEndpointsOf(child_.get());
  const RefCountedPtr<InFlight> total_;
  const int64_t max_total_;
  const int64_t max_per_endpoint_;
  const std::shared_ptr<stats::PolicyStats> stats_;
};

class CircuitBreaker : public ParentPolicy {
 public:
  explicit CircuitBreaker(Args args)
      : ParentPolicy(std::move(args), kCircuitBreakerPolicyName) {}

 private:
  static std::string Key(const grpc_core::ServerAddress& address) { return AddressText(address); }

  // The child's subchannels carry their address's in-flight count.
  ChildPolicy::Wrapping SubchannelWrapping() override {
    return {[this](const grpc_core::ServerAddress& address,
                   RefCountedPtr<SubchannelInterface> subchannel)
                -> RefCountedPtr<grpc_core::DelegatingSubchannel> {
              auto& count = per_endpoint_[Key(address)];
              if (count == nullptr) count = grpc_core::MakeRefCounted<InFlight>();
              return grpc_core::MakeRefCounted<LimitedSubchannel>(std::move(subchannel), count);
            },
            &LimitedSubchannel::kKind};
  }

  absl::StatusOr<ChildSpecs> ChildrenForLocked(const AddressUpdate& update) override {
    // Counts of endpoints that left go with them (their calls keep theirs).
    std::map<std::string, RefCountedPtr<InFlight>> kept;
    for (const auto& address : update.addresses) {
      const std::string key = Key(address);
      auto it = per_endpoint_.find(key);
      kept[key] = it != per_endpoint_.end() ? it->second : grpc_core::MakeRefCounted<InFlight>();
    }
    per_endpoint_ = std::move(kept);
    ChildSpecs specs;
    specs[std::string(kCircuitBreakerPolicyName)] = {
        std::string(kCircuitBreakerPolicyName), update.addresses,
        ParamsOf<CircuitBreakerParams>(config()).child_policy};
    return specs;
  }

  PickerUpdate MakePickerLocked() override {
    const ChildPolicy* c = child(std::string(kCircuitBreakerPolicyName));
    if (c == nullptr || c->picker() == nullptr) return {};
    const CircuitBreakerParams& params = ParamsOf<CircuitBreakerParams>(config());
    return {c->state(), c->status(),
            std::make_unique<BreakerPicker>(c->picker(), total_, params.max_concurrent_requests,
                                            params.max_requests_per_endpoint, policy_stats())};
  }

  const RefCountedPtr<InFlight> total_ = grpc_core::MakeRefCounted<InFlight>();
  std::map<std::string, RefCountedPtr<InFlight>> per_endpoint_;
};

}  // namespace

void RegisterCircuitBreaker(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<CircuitBreaker, CircuitBreakerParams>>(
          kCircuitBreakerPolicyName));
}

}  // namespace lbkit::policies
