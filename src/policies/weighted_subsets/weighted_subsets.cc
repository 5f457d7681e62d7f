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
#include "policies/common/serving_count.h"
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
  }
};

bool Matches(const std::map<std::string, std::string>& wanted,
             const grpc_core::ServerAddress& address) {
  if (wanted.empty()) return true;
  const EndpointAttributes* attrs = GetEndpointAttributes(address);
  if (attrs == nullptr) return false;
  for (const auto& [k, v] : wanted) {
    auto it = attrs->labels.find(k);
    if (it == attrs->labels.end() || it->second != v) return false;
  }
  return true;
}

// A subset in the picker: its child's picker, or null to fail its share.
struct PickerSubset {
  std::shared_ptr<LoadBalancingPolicy::SubchannelPicker> picker;
  std::string name;
};

class SubsetPicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  SubsetPicker(std::vector<PickerSubset> subsets, std::vector<uint32_t> table, size_t serving)
      : subsets_(std::move(subsets)), table_(std::move(table)), serving_(serving) {}

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    const uint64_t ticket = next_.fetch_add(1, std::memory_order_relaxed);
    const PickerSubset& subset = subsets_[table_[ticket % table_.size()]];
    if (subset.picker == nullptr) {
      // A drop, not a failure: a failed pick makes wait_for_ready calls
      // wait (for a subset that may stay empty) until their deadline; the
      // subset's share must fail at once, whatever the call's kind.
      return LoadBalancingPolicy::PickResult::Drop(absl::UnavailableError(absl::StrCat(
          "lbkit_weighted_subsets: subset \"", subset.name,
          "\" has no READY endpoint (onEmptySubset: fail)")));
    }
    return ChildPolicy::Unwrap(subset.picker->Pick(args));
  }
  std::optional<size_t> ServingEndpoints() const override { return serving_; }

 private:
  const std::vector<PickerSubset> subsets_;
  const std::vector<uint32_t> table_;  // smooth weighted round robin over subsets_
  const size_t serving_;
  std::atomic<uint64_t> next_{0};
};

class WeightedSubsets : public LoadBalancingPolicy, public ChildPolicy::Owner {
 public:
  explicit WeightedSubsets(Args args)
      : LoadBalancingPolicy(std::move(args)),
        stats_(stats::PolicyStats::Register(std::string(kWeightedSubsetsPolicyName),
                                            /*counts_calls=*/false)) {}

  absl::string_view name() const override { return kWeightedSubsetsPolicyName; }

  absl::Status UpdateLocked(UpdateArgs args) override;
  void ExitIdleLocked() override {
    for (auto& [name, child] : children_) child->ExitIdleLocked();
  }
  void ResetBackoffLocked() override {
    for (auto& [name, child] : children_) child->ResetBackoffLocked();
  }
  void OnChildChangedLocked() override {
    if (!updating_) UpdatePickerLocked();
  }

 private:
  void ShutdownLocked() override {
    shutdown_ = true;
    children_.clear();
  }
  void UpdatePickerLocked();
  void PublishLocked(grpc_connectivity_state state, const absl::Status& status,
                     std::unique_ptr<SubchannelPicker> picker) {
    stats_->CountPickerUpdate();
    channel_control_helper()->UpdateState(state, status, std::move(picker));
  }

  const std::shared_ptr<stats::PolicyStats> stats_;
  RefCountedPtr<Config> config_;
  std::map<std::string, grpc_core::OrphanablePtr<ChildPolicy>> children_;  // by subset name
  bool updating_ = false;
  bool shutdown_ = false;
};

absl::Status WeightedSubsets::UpdateLocked(UpdateArgs args) {
  if (shutdown_) return absl::OkStatus();
  if (args.config != nullptr) config_ = std::move(args.config);
  const WeightedSubsetsParams& params = ParamsOf<WeightedSubsetsParams>(*config_);
  stats_->SetTarget(ChannelTarget(args.args, channel_control_helper()));
  stats_->SetConfigJson(ConfigJson(config_.get()));
  if (!args.addresses.ok()) {
    stats_->CountResolverError(args.addresses.status().ToString());
    if (children_.empty()) {
      PublishLocked(GRPC_CHANNEL_TRANSIENT_FAILURE, args.addresses.status(),
                    std::make_unique<TransientFailurePicker>(args.addresses.status()));
    }
    return args.addresses.status();
  }
  // An endpoint joins every subset whose labels it carries; one that matches
  // none gets no traffic (and no connection).
  std::map<std::string, grpc_core::ServerAddressList> members;
  for (const SubsetJson& subset : params.subsets) {
    auto& list = members[subset.name];
    for (const auto& address : *args.addresses) {
      if (Matches(subset.labels, address)) list.push_back(address);
    }
  }
  updating_ = true;
  for (auto it = children_.begin(); it != children_.end();) {
    it = members.count(it->first) ? std::next(it) : children_.erase(it);
  }
  std::vector<std::string> errors;
  for (const SubsetJson& subset : params.subsets) {
    auto& child = children_[subset.name];
    if (child == nullptr) {
      child = grpc_core::MakeOrphanable<ChildPolicy>(
          subset.name, this, Ref(DEBUG_LOCATION, "ChildPolicy"), channel_control_helper(),
          work_serializer(), interested_parties(), args.args);
    }
    absl::Status status = child->UpdateLocked(std::move(members[subset.name]), subset.child_policy,
                                              args.args, args.resolution_note);
    if (!status.ok()) errors.push_back(absl::StrCat(subset.name, ": ", status.ToString()));
  }
  updating_ = false;
  UpdatePickerLocked();
  if (errors.empty()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(kWeightedSubsetsPolicyName, ": [", absl::StrJoin(errors, "; "), "]"));
}

void WeightedSubsets::UpdatePickerLocked() {
  const WeightedSubsetsParams& params = ParamsOf<WeightedSubsetsParams>(*config_);
  const bool fail_empty = params.on_empty_subset == "fail";
  std::vector<PickerSubset> subsets;
  std::vector<uint64_t> weights;
  std::vector<std::string> detail;
  bool any_ready = false, any_connecting = false;
  absl::Status failure;
  size_t serving = 0;
  for (const SubsetJson& subset : params.subsets) {
    auto it = children_.find(subset.name);
    if (it == children_.end()) continue;
    const ChildPolicy& child = *it->second;
    const bool ready = child.state() == GRPC_CHANNEL_READY && child.picker() != nullptr;
    detail.push_back(absl::StrCat("{\"name\":", stats::JsonString(subset.name), ",\"weight\":",
                                  subset.weight, ",\"endpoints\":", child.total(),
                                  ",\"ready\":", child.ready(), ",\"state\":\"",
                                  stats::ConnectivityName(child.state()), "\"}"));
    if (ready) {
      any_ready = true;
    } else if (child.state() == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      if (failure.ok()) failure = child.status();
    } else if (child.total() > 0) {
      any_connecting = true;
    }
    if (subset.weight == 0 || (!ready && !fail_empty)) continue;
    subsets.push_back({ready ? child.picker() : nullptr, subset.name});
    if (ready) serving += child.ready();
    weights.push_back(subset.weight);
  }
  stats_->SetDetailJson(absl::StrCat("{\"subsets\":[", absl::StrJoin(detail, ","), "]}"));
  if (any_ready && !subsets.empty()) {
    PublishLocked(GRPC_CHANNEL_READY, absl::OkStatus(),
                  std::make_unique<SubsetPicker>(std::move(subsets),
                                                 algorithms::SmoothWrrTable(weights), serving));
  } else if (any_connecting) {
    PublishLocked(GRPC_CHANNEL_CONNECTING, absl::OkStatus(),
                  std::make_unique<QueuePicker>(Ref(DEBUG_LOCATION, "QueuePicker")));
  } else {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        kWeightedSubsetsPolicyName, ": no subset with traffic has a READY endpoint",
        failure.ok() ? "" : "; last error: ", failure.ok() ? "" : failure.ToString()));
    PublishLocked(GRPC_CHANNEL_TRANSIENT_FAILURE, status,
                  std::make_unique<TransientFailurePicker>(status));
  }
}

}  // namespace

void RegisterWeightedSubsets(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<WeightedSubsets, WeightedSubsetsParams>>(
          kWeightedSubsetsPolicyName));
}

}  // namespace lbkit::policies
