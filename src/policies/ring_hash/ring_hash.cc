#include "policies/ring_hash/ring_hash.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/ring_hash.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/hash_policy.h"
#include "policies/common/health_check.h"
#include "policies/common/policy_factory.h"
#include "policies/register.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::ValidationErrors;

constexpr uint64_t kMaxRingSizeLimit = 8388608;  // Envoy's and gRPC's bound
constexpr uint32_t kMaxFixedEntries = 65536;

struct RingHashParams {
  absl::optional<HealthCheckParams> health_check;
  std::string request_hash_header;
  bool use_source_ip = false;
  uint32_t hash_balance_factor = 0;  // off
  uint64_t min_ring_size = 1024;
  uint64_t max_ring_size = 4096;
  // 0 = Envoy's sizing from min/max; else a fixed count per unit of weight.
  uint32_t fixed_entries_per_weight = 0;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<RingHashParams>()
            .OptionalField("healthCheck", &RingHashParams::health_check)
            .OptionalField("requestHashHeader", &RingHashParams::request_hash_header)
            .OptionalField("useSourceIp", &RingHashParams::use_source_ip)
            .OptionalField("minRingSize", &RingHashParams::min_ring_size)
            .OptionalField("maxRingSize", &RingHashParams::max_ring_size)
            .OptionalField("hashBalanceFactor", &RingHashParams::hash_balance_factor)
            .OptionalField("fixedEntriesPerWeight", &RingHashParams::fixed_entries_per_weight)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    ValidateHashFields(&request_hash_header, use_source_ip, hash_balance_factor, errors);
    for (auto [name, value] : {std::pair<const char*, uint64_t>{".minRingSize", min_ring_size},
                               {".maxRingSize", max_ring_size}}) {
      ValidationErrors::ScopedField field(errors, name);
      if (!errors->FieldHasErrors() && (value < 1 || value > kMaxRingSizeLimit)) {
        errors->AddError("must be in [1, 8388608]");
      }
    }
    {
      ValidationErrors::ScopedField field(errors, ".fixedEntriesPerWeight");
      if (!errors->FieldHasErrors() && fixed_entries_per_weight > kMaxFixedEntries) {
        errors->AddError("must be at most 65536 (0 = size the ring as Envoy does)");
      }
    }
    if (min_ring_size > max_ring_size) {
      ValidationErrors::ScopedField field(errors, ".minRingSize");
      if (!errors->FieldHasErrors()) errors->AddError("must not exceed maxRingSize");
    }
  }
};

class RingLookup : public HashLookup {
 public:
  explicit RingLookup(algorithms::HashRing ring) : ring_(std::move(ring)) {}
  size_t positions() const override { return ring_.size(); }
  size_t Start(uint64_t hash) const override { return ring_.Find(hash); }
  uint32_t EndpointAt(size_t position) const override { return ring_.entry(position).endpoint; }

 private:
  const algorithms::HashRing ring_;
};

class RingHash : public HashPolicy {
 public:
  explicit RingHash(Args args) : HashPolicy(std::move(args), kRingHashPolicyName) {}
  absl::string_view name() const override { return kRingHashPolicyName; }

  const absl::optional<HealthCheckParams>* HealthCheckOf(const Config& config) const override {
    return &ParamsOf<RingHashParams>(config).health_check;
  }

 private:
  void ApplyConfigLocked(const RefCountedPtr<Config>& config) override {
    if (config == nullptr) return;
    const RingHashParams& params = ParamsOf<RingHashParams>(*config);
    if (params.min_ring_size != params_.min_ring_size ||
        params.max_ring_size != params_.max_ring_size ||
        params.fixed_entries_per_weight != params_.fixed_entries_per_weight) {
      InvalidateLookup();
    }
    params_ = params;
  }

  std::shared_ptr<const HashLookup> BuildLookup(const std::vector<std::string>& keys,
                                                const std::vector<uint32_t>& weights) override {
    if (params_.fixed_entries_per_weight != 0) {
      return std::make_shared<RingLookup>(algorithms::HashRing::BuildFixed(
          keys, weights, params_.fixed_entries_per_weight, kMaxRingSizeLimit));
    }
    return std::make_shared<RingLookup>(algorithms::HashRing::Build(
        keys, weights, params_.min_ring_size, params_.max_ring_size));
  }
  const std::string& hash_header() const override { return params_.request_hash_header; }
  bool use_source_ip() const override { return params_.use_source_ip; }
  uint32_t hash_balance_factor() const override { return params_.hash_balance_factor; }

  RingHashParams params_;
};

}  // namespace

void RegisterRingHash(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<RingHash, RingHashParams>>(kRingHashPolicyName));
}

}  // namespace lbkit::policies
