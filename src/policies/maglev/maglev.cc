#include "policies/maglev/maglev.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "algorithms/maglev.h"
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

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::ValidationErrors;
using algorithms::MaglevTable;

struct MaglevParams {
  absl::optional<HealthCheckParams> health_check;
  std::string request_hash_header;
  bool use_source_ip = false;
  uint32_t hash_balance_factor = 0;  // off
  uint64_t table_size = MaglevTable::kDefaultSize;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<MaglevParams>()
            .OptionalField("healthCheck", &MaglevParams::health_check)
            .OptionalField("requestHashHeader", &MaglevParams::request_hash_header)
            .OptionalField("useSourceIp", &MaglevParams::use_source_ip)
            .OptionalField("tableSize", &MaglevParams::table_size)
            .OptionalField("hashBalanceFactor", &MaglevParams::hash_balance_factor)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    ValidateHashFields(&request_hash_header, use_source_ip, hash_balance_factor, errors);
    ValidationErrors::ScopedField field(errors, ".tableSize");
    if (errors->FieldHasErrors()) return;
    if (table_size > MaglevTable::kMaxSize) {
      errors->AddError(absl::StrCat("must be at most ", MaglevTable::kMaxSize));
    } else if (!MaglevTable::IsPrime(table_size)) {
      errors->AddError("must be a prime number (e.g. 65537, 131071, 5000011)");
    }
  }
};

class MaglevLookup : public HashLookup {
 public:
  explicit MaglevLookup(MaglevTable table) : table_(std::move(table)) {}
  size_t positions() const override { return table_.size(); }
  size_t Start(uint64_t hash) const override { return hash % table_.size(); }
  uint32_t EndpointAt(size_t position) const override { return table_.slots()[position]; }

 private:
  const MaglevTable table_;
};

class Maglev : public HashPolicy {
 public:
  explicit Maglev(Args args) : HashPolicy(std::move(args), kMaglevPolicyName) {}
  absl::string_view name() const override { return kMaglevPolicyName; }

  const absl::optional<HealthCheckParams>* HealthCheckOf(const Config& config) const override {
    return &ParamsOf<MaglevParams>(config).health_check;
  }

 private:
  void ApplyConfigLocked(const RefCountedPtr<Config>& config) override {
    if (config == nullptr) return;
    const MaglevParams& params = ParamsOf<MaglevParams>(*config);
    if (params.table_size != params_.table_size) InvalidateLookup();
    params_ = params;
  }

  std::shared_ptr<const HashLookup> BuildLookup(const std::vector<std::string>& keys,
                                                const std::vector<uint32_t>& weights) override {
    return std::make_shared<MaglevLookup>(MaglevTable::Build(keys, weights, params_.table_size));
  }
  const std::string& hash_header() const override { return params_.request_hash_header; }
  bool use_source_ip() const override { return params_.use_source_ip; }
  uint32_t hash_balance_factor() const override { return params_.hash_balance_factor; }

  MaglevParams params_;
};

}  // namespace

void RegisterMaglev(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<Maglev, MaglevParams>>(kMaglevPolicyName));
}

}  // namespace lbkit::policies
