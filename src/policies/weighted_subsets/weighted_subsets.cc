#include "policies/weighted_subsets/weighted_subsets.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "algorithms/smooth_wrr.h"
#include "common/endpoint_attributes.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "policies/common/policy_factory.h"
#include "policies/common/subset_router.h"
#include "policies/register.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"
#include "stats/stats.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::ValidationErrors;

constexpr absl::string_view kDefaultChildPolicy = R"([{"lbkit_round_robin": {}}])";

struct SubsetJson {
  std::string name;
  std::map<std::string, std::string> labels;
  uint32_t weight = 0;
  RefCountedPtr<LoadBalancingPolicy::Config> child_policy;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader = grpc_core::JsonObjectLoader<SubsetJson>()
                                    .Field("name", &SubsetJson::name)
                                    .OptionalField("labels", &SubsetJson::labels)
                                    .Field("weight", &SubsetJson::weight)
                                    .Finish();
    return loader;
  }
  void JsonPostLoad(const grpc_core::Json& json, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    child_policy = ParseChildPolicyField(json, kDefaultChildPolicy, errors);
    ValidationErrors::ScopedField field(errors, ".name");
    if (!errors->FieldHasErrors() && name.empty()) errors->AddError("must not be empty");
  }
};

struct WeightedSubsetsParams {
  std::vector<SubsetJson> subsets;
  std::string on_empty_subset = "redistribute";

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<WeightedSubsetsParams>()
            .Field("subsets", &WeightedSubsetsParams::subsets)
            .OptionalField("onEmptySubset", &WeightedSubsetsParams::on_empty_subset)
            .Finish();
    return loader;
  }
  void JsonPostLoad(const grpc_core::Json&, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    {
      ValidationErrors::ScopedField field(errors, ".onEmptySubset");
      if (!errors->FieldHasErrors() && on_empty_subset != "redistribute" &&
          on_empty_subset != "fail") {
        errors->AddError("must be \"redistribute\" or \"fail\"");
      }
    }
    ValidationErrors::ScopedField field(errors, ".subsets");
    if (errors->FieldHasErrors()) return;
    if (subsets.empty()) {
      errors->AddError("must list at least one subset");
      return;
    }
    uint64_t total = 0;
    for (const SubsetJson& subset : subsets) total += subset.weight;
    // Not on top of a subset's own error (e.g. a missing weight).
    if (total == 0 && errors->ok()) errors->AddError("weights must not all be 0");
    std::set<std::string> names;
    for (size_t i = 0; i < subsets.size(); ++i) {
      if (!subsets[i].name.empty() && !names.insert(subsets[i].name).second) {
        ValidationErrors::ScopedField entry(errors, absl::StrCat("[", i, "].name"));
        errors->AddError(absl::StrCat("\"", subsets[i].name, "\" names two subsets"));
      }
    }
    // One route for every call, split over all subsets.
    router.fail_empty_subsets = on_empty_subset == "fail";
    RouteSpec route;
    route.name = "default";
    for (size_t i = 0; i < subsets.size(); ++i) {
      router.subsets.push_back({subsets[i].name, subsets[i].labels, subsets[i].child_policy});
      route.split.emplace_back(i, subsets[i].weight);
    }
    router.routes.push_back(std::move(route));
  }

  RouterSpec router;
};

class WeightedSubsets : public SubsetRouter {
 public:
  explicit WeightedSubsets(Args args)
      : SubsetRouter(std::move(args), kWeightedSubsetsPolicyName,
                     [](const Config& config) -> const RouterSpec& {
                       return ParamsOf<WeightedSubsetsParams>(config).router;
                     }) {}
};


}  // namespace

void RegisterWeightedSubsets(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<WeightedSubsets, WeightedSubsetsParams>>(
          kWeightedSubsetsPolicyName));
}

}  // namespace lbkit::policies
