// lbkit_round_robin, the template every lbkit leaf policy follows:
//   params (parsed with gRPC's JSON object loader, so errors read like
//   gRPC's own) -> policy (a LeafPolicy: endpoints, states and picker updates
//   are shared) -> immutable picker wrapping an algorithm from
//   src/algorithms/ -> registration with ParamsPolicyFactory.
//
// Differences from gRPC's round_robin (CC/lb_policy/round_robin):
//  - subchannels and their state are kept across resolver updates instead
//    of building a new subchannel list each time (EndpointList);
//  - re-resolution is requested only on TRANSIENT_FAILURE, not on IDLE;
//  - the picker is lock-free and safe to call from several threads.

#include "policies/round_robin/round_robin.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "algorithms/random.h"
#include "algorithms/round_robin.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/call_counter.h"
#include "policies/common/leaf_policy.h"
#include "policies/common/slow_start.h"
#include "policies/common/health_check.h"
#include "policies/common/policy_factory.h"
#include "policies/common/serving_count.h"
#include "policies/register.h"
#include "src/core/lib/config/core_configuration.h"
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

//
// Config
//

// Only the health check every leaf policy takes; unknown fields are
// ignored, as gRPC does.
struct RoundRobinParams {
  absl::optional<HealthCheckParams> health_check;
  absl::optional<SlowStartParams> slow_start;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<RoundRobinParams>()
            .OptionalField("healthCheck", &RoundRobinParams::health_check)
            .OptionalField("slowStart", &RoundRobinParams::slow_start)
            .Finish();
    return loader;
  }
};

//
// Picker
//

class RoundRobinPicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  // `factors`: empty, or (while an endpoint is in slow start) each
  // endpoint's weight factor: then a call goes to endpoint i with
  // probability factor_i / sum of factors, so a ramping endpoint takes its
  // scaled share of an even rotation.
  RoundRobinPicker(std::vector<RefCountedPtr<SubchannelInterface>> subchannels,
                   std::vector<std::shared_ptr<stats::EndpointStats>> stats, size_t start,
                   const std::vector<double>& factors)
      : subchannels_(std::move(subchannels)),
        stats_(std::move(stats)),
        cursor_(subchannels_.size(), start) {
    uint64_t total = 0;
    for (double f : factors) {
      total += std::max<uint64_t>(1, static_cast<uint64_t>(f * 1000000));
      cumulative_.push_back(total);
    }
  }

  LoadBalancingPolicy::PickResult Pick(
      LoadBalancingPolicy::PickArgs /*args*/) override {
    size_t i;
    if (cumulative_.empty()) {
      i = cursor_.Next();
    } else {
      const uint64_t ticket = algorithms::ThreadRandom() % cumulative_.back();
      i = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), ticket) -
                              cumulative_.begin());
    }
    return LoadBalancingPolicy::PickResult::Complete(subchannels_[i],
                                                     CountCall(stats_[i].get()));
  }
  std::optional<size_t> ServingEndpoints() const override { return subchannels_.size(); }

 private:
  const std::vector<RefCountedPtr<SubchannelInterface>> subchannels_;
  const std::vector<std::shared_ptr<stats::EndpointStats>> stats_;
  algorithms::RoundRobinCursor cursor_;
  std::vector<uint64_t> cumulative_;  // slow start only
};

//
// Policy
//

class RoundRobin : public LeafPolicy {
 public:
  explicit RoundRobin(Args args)
      : LeafPolicy(std::move(args), kRoundRobinPolicyName) {}

  absl::string_view name() const override { return kRoundRobinPolicyName; }

  const absl::optional<HealthCheckParams>* HealthCheckOf(const Config& config) const override {
    return &ParamsOf<RoundRobinParams>(config).health_check;
  }

 private:
  std::unique_ptr<SubchannelPicker> MakeReadyPicker(
      const std::vector<Endpoint*>& ready) override {
    std::vector<RefCountedPtr<SubchannelInterface>> subchannels;
    std::vector<std::shared_ptr<stats::EndpointStats>> stats;
    subchannels.reserve(ready.size());
    for (Endpoint* endpoint : ready) {
      subchannels.push_back(endpoint->subchannel());
      stats.push_back(endpoint->stats());
    }
    const size_t start = absl::Uniform<size_t>(bitgen_, 0, ready.size());
    std::vector<double> factors =
        SlowStartFactorsLocked(ready, slow_start_.has_value() ? &*slow_start_ : nullptr);
    if (std::all_of(factors.begin(), factors.end(), [](double f) { return f >= 1.0; })) {
      factors.clear();
    }
    return std::make_unique<RoundRobinPicker>(std::move(subchannels), std::move(stats), start,
                                              factors);
  }

  void ApplyConfigLocked(const RefCountedPtr<Config>& config) override {
    if (config != nullptr) slow_start_ = ParamsOf<RoundRobinParams>(*config).slow_start;
  }

  absl::BitGen bitgen_;
  absl::optional<SlowStartParams> slow_start_;
};

}  // namespace

void RegisterRoundRobin(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<RoundRobin, RoundRobinParams>>(
          kRoundRobinPolicyName));
}

}  // namespace lbkit::policies
