#include "policies/locality/locality.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "algorithms/locality.h"
#include "algorithms/random.h"
#include "common/server_address_attributes.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "policies/common/parent_policy.h"
#include "policies/common/policy_factory.h"
#include "policies/common/serving_count.h"
#include "policies/register.h"
#include "stats/stats.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"

namespace lbkit::policies {

namespace {

using algorithms::LocalityName;
using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::ValidationErrors;

constexpr absl::string_view kDefaultChildPolicy = R"([{"lbkit_round_robin": {}}])";

// Kubernetes' and Istio's topology label keys: in failoverPriority they
// compare the locality parts, as Istio does.
constexpr absl::string_view kRegionLabel = "topology.kubernetes.io/region";
constexpr absl::string_view kZoneLabel = "topology.kubernetes.io/zone";
constexpr absl::string_view kSubZoneLabel = "topology.istio.io/subzone";

//
// Config
//

struct DistributeJson {
  std::string from;
  std::map<std::string, uint32_t> to;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader = grpc_core::JsonObjectLoader<DistributeJson>()
                                    .Field("from", &DistributeJson::from)
                                    .Field("to", &DistributeJson::to)
                                    .Finish();
    return loader;
  }
};

struct FailoverJson {
  std::string from;
  std::string to;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader = grpc_core::JsonObjectLoader<FailoverJson>()
                                    .Field("from", &FailoverJson::from)
                                    .Field("to", &FailoverJson::to)
                                    .Finish();
    return loader;
  }
};

struct LocalityParams {
  absl::optional<std::string> locality;
  std::vector<DistributeJson> distribute;
  std::vector<FailoverJson> failover;
  std::vector<std::string> failover_priority;
  std::map<std::string, std::string> client_labels;
  uint32_t overprovisioning_factor = 140;
  uint32_t panic_threshold = 50;

  // Derived in JsonPostLoad.
  RefCountedPtr<LoadBalancingPolicy::Config> child_policy;
  std::optional<LocalityName> client;
  std::vector<algorithms::DistributeRule> distribute_rules;
  std::vector<algorithms::FailoverRule> failover_rules;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader =
        grpc_core::JsonObjectLoader<LocalityParams>()
            .OptionalField("locality", &LocalityParams::locality)
            .OptionalField("distribute", &LocalityParams::distribute)
            .OptionalField("failover", &LocalityParams::failover)
            .OptionalField("failoverPriority", &LocalityParams::failover_priority)
            .OptionalField("clientLabels", &LocalityParams::client_labels)
            .OptionalField("overprovisioningFactor", &LocalityParams::overprovisioning_factor)
            .OptionalField("panicThreshold", &LocalityParams::panic_threshold)
            .Finish();
    return loader;
  }

  void JsonPostLoad(const grpc_core::Json& json, const grpc_core::JsonArgs&,
                    ValidationErrors* errors) {
    child_policy = ParseChildPolicyField(json, kDefaultChildPolicy, errors);
    LoadClientLocality(errors);
    LoadDistribute(errors);
    LoadFailover(errors);
    if (!distribute.empty() && !failover.empty()) {
      ValidationErrors::ScopedField field(errors, ".distribute");
      errors->AddError("cannot be set together with failover (as in Istio)");
    }
    for (size_t i = 0; i < failover_priority.size(); ++i) {
      ValidationErrors::ScopedField field(errors, absl::StrCat(".failoverPriority[", i, "]"));
      if (failover_priority[i].empty() || absl::StartsWith(failover_priority[i], "=")) {
        errors->AddError("must be a label key, or key=value");
      }
    }
    {
      ValidationErrors::ScopedField field(errors, ".overprovisioningFactor");
      if (!errors->FieldHasErrors() && overprovisioning_factor == 0) {
        errors->AddError("must be at least 1 (a percentage; Envoy's default is 140)");
      }
    }
    {
      ValidationErrors::ScopedField field(errors, ".panicThreshold");
      if (!errors->FieldHasErrors() && panic_threshold > 100) {
        errors->AddError("must be a percentage in [0, 100]");
      }
    }
  }

  // `locality`, else $LBKIT_LOCALITY.
  void LoadClientLocality(ValidationErrors* errors) {
    ValidationErrors::ScopedField field(errors, ".locality");
    if (!errors->FieldHasErrors()) {
      std::string text;
      const char* source = "";
      if (locality.has_value()) {
        text = *locality;
      } else if (const char* env = std::getenv(kLocalityEnvironmentVariable);
                 env != nullptr && *env != '\0') {
        text = env;
        source = " (from $LBKIT_LOCALITY)";
      }
      if (!text.empty() || locality.has_value()) {
        client = algorithms::ParseLocalityName(text);
        if (!client.has_value()) {
          errors->AddError(absl::StrCat("\"", text, "\"", source,
                                        " is not region[/zone[/subZone]]"));
        }
      }
    }
  }

  void LoadDistribute(ValidationErrors* errors) {
    for (size_t i = 0; i < distribute.size(); ++i) {
      const DistributeJson& rule = distribute[i];
      algorithms::DistributeRule out{rule.from, {}};
      {
        ValidationErrors::ScopedField field(errors, absl::StrCat(".distribute[", i, "].from"));
        if (!errors->FieldHasErrors() && !algorithms::IsLocalityPattern(rule.from)) {
          errors->AddError("is not a locality pattern region[/zone[/subZone]] (\"*\" allowed)");
        }
      }
      ValidationErrors::ScopedField field(errors, absl::StrCat(".distribute[", i, "].to"));
      if (errors->FieldHasErrors()) continue;
      uint64_t sum = 0;
      for (const auto& [pattern, weight] : rule.to) {
        ValidationErrors::ScopedField entry(errors, absl::StrCat("[\"", pattern, "\"]"));
        if (!algorithms::IsLocalityPattern(pattern)) {
          errors->AddError("is not a locality pattern region[/zone[/subZone]] (\"*\" allowed)");
        } else if (weight < 1 || weight > 100) {
          errors->AddError("weight must be in [1, 100]");
        }
        sum += weight;
        out.to.emplace_back(pattern, weight);
      }
      if (rule.to.empty()) {
        errors->AddError("must name at least one locality");
      } else if (sum != 100) {
        errors->AddError(absl::StrCat("weights must sum to 100, not ", sum));
      }
      // More specific patterns claim their localities first (Istio's map
      // order is unspecified; this one is deterministic).
      std::stable_sort(out.to.begin(), out.to.end(), [](const auto& a, const auto& b) {
        auto specificity = [](const std::string& p) {
          int n = 0;
          for (absl::string_view s : absl::StrSplit(p, '/')) n += s != "*" ? 2 : 1;
          return n;
        };
        return specificity(a.first) > specificity(b.first);
      });
      distribute_rules.push_back(std::move(out));
    }
  }

  void LoadFailover(ValidationErrors* errors) {
    for (size_t i = 0; i < failover.size(); ++i) {
      for (auto [name, value] : {std::pair<const char*, const std::string*>{"from", &failover[i].from},
                                 {"to", &failover[i].to}}) {
        ValidationErrors::ScopedField field(errors,
                                            absl::StrCat(".failover[", i, "].", name));
        if (errors->FieldHasErrors()) continue;
        if (value->empty() || absl::StrContains(*value, '/') || absl::StrContains(*value, '*')) {
          errors->AddError("must be a region name (no \"/\" or \"*\")");
        }
      }
      if (failover[i].from == failover[i].to && !failover[i].from.empty()) {
        ValidationErrors::ScopedField field(errors, absl::StrCat(".failover[", i, "].to"));
        errors->AddError("must differ from \"from\"");
      }
      failover_rules.push_back({failover[i].from, failover[i].to});
    }
  }

  // The client's value for failoverPriority entry `i`.
  std::optional<std::string> ClientValue(size_t i) const {
    const std::string& entry = failover_priority[i];
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) return entry.substr(eq + 1);
    if (auto it = client_labels.find(entry); it != client_labels.end()) return it->second;
    if (client.has_value()) return TopologyValue(entry, *client);
    return std::nullopt;
  }

  std::string Key(size_t i) const {
    const std::string& entry = failover_priority[i];
    return entry.substr(0, entry.find('='));
  }

  static std::optional<std::string> TopologyValue(absl::string_view key, const LocalityName& l) {
    const std::string* part = key == kRegionLabel    ? &l.region
                              : key == kZoneLabel    ? &l.zone
                              : key == kSubZoneLabel ? &l.sub_zone
                                                     : nullptr;
    if (part == nullptr || part->empty()) return std::nullopt;
    return *part;
  }
};

LocalityName ToName(const internal::Locality& l) { return {l.region, l.zone, l.sub_zone}; }

//
// Picker
//

// A priority level as the picker sees it: its cumulative share of traffic
// and its localities' pickers with cumulative weights.
struct Level {
  uint32_t cumulative_percent = 0;
  std::vector<std::shared_ptr<LoadBalancingPolicy::SubchannelPicker>> pickers;
  std::vector<double> cumulative_weight;
};

class LocalityPicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  LocalityPicker(std::vector<Level> levels, size_t serving)
      : levels_(std::move(levels)), serving_(serving) {}

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    // x in [1, 100], as Envoy draws it; the first level whose cumulative
    // share covers x takes the call.
    const uint32_t x = static_cast<uint32_t>(algorithms::UniformIndex(100)) + 1;
    const Level* level = &levels_.back();
    for (const Level& l : levels_) {
      if (x <= l.cumulative_percent) {
        level = &l;
        break;
      }
    }
    const double r = static_cast<double>(algorithms::ThreadRandom() >> 11) * 0x1.0p-53 *
                     level->cumulative_weight.back();
    size_t i = static_cast<size_t>(
        std::upper_bound(level->cumulative_weight.begin(), level->cumulative_weight.end(), r) -
        level->cumulative_weight.begin());
    if (i >= level->pickers.size()) i = level->pickers.size() - 1;
    return ChildPolicy::Unwrap(level->pickers[i]->Pick(args));
  }
  std::optional<size_t> ServingEndpoints() const override { return serving_; }

 private:
  const std::vector<Level> levels_;  // only levels with traffic, each with a picker
  const size_t serving_;
};

//
// Policy
//

class LocalityPolicy : public ParentPolicy {
 public:
  explicit LocalityPolicy(Args args) : ParentPolicy(std::move(args), kLocalityPolicyName) {}

 private:
  // A child's place, by the child's key "<label priority>|<locality>". The
  // level is the group's attribute, not its identity, so a change of level
  // (the client moved, a failover rule changed) keeps its connections.
  struct Group {
    uint32_t priority = 0;
    uint64_t weight = 0;  // distribute weight; 0 = pool by healthy endpoints
  };

  // The config, with the client's locality from the resolver when neither
  // `locality` nor $LBKIT_LOCALITY gives one (lbkit-k8s: the pod's node).
  LocalityParams EffectiveParams(const grpc_core::ChannelArgs& args) const;
  absl::StatusOr<ChildSpecs> ChildrenForLocked(const AddressUpdate& update) override;
  PickerUpdate MakePickerLocked() override;
  // Each level's healthy and total endpoints, and which levels have traffic.
  std::vector<algorithms::PriorityHealth> LevelHealth() const;
  std::vector<Level> BuildLevels(const algorithms::PriorityLoad& load) const;
  // The levels and localities as lbkit::DumpState() shows them.
  std::string DetailJson(const algorithms::PriorityLoad& load) const;

  LocalityParams params_;  // the effective config of the last update
  bool distributing_ = false;
  std::map<std::string, Group> groups_;
};

LocalityParams LocalityPolicy::EffectiveParams(const grpc_core::ChannelArgs& args) const {
  LocalityParams params = ParamsOf<LocalityParams>(config());
  if (params.client.has_value()) return params;
  if (auto arg = args.GetString(kClientLocalityChannelArg); arg.has_value()) {
    params.client = algorithms::ParseLocalityName(std::string_view(arg->data(), arg->size()));
  }
  return params;
}

absl::StatusOr<ParentPolicy::ChildSpecs> LocalityPolicy::ChildrenForLocked(
    const AddressUpdate& update) {
  params_ = EffectiveParams(update.args);
  std::vector<LocalityName> names;
  std::vector<const internal::EndpointAttributes*> attrs;
  for (const grpc_core::ServerAddress& address : update.addresses) {
    attrs.push_back(internal::GetEndpointAttributes(address));
    names.push_back(attrs.back() != nullptr ? ToName(attrs.back()->locality) : LocalityName{});
  }
  algorithms::PlacementRules rules{params_.client, params_.failover_rules,
                                   params_.distribute_rules, params_.failover_priority.size()};
  const std::vector<algorithms::Placement> placed = algorithms::PlaceEndpoints(
      rules, names, [&](size_t i) { return params_.ClientValue(i); },
      [&](size_t e, size_t i) -> std::optional<std::string> {
        const std::string key = params_.Key(i);
        if (attrs[e] != nullptr) {
          auto label = attrs[e]->labels.find(key);
          if (label != attrs[e]->labels.end()) return label->second;
        }
        return LocalityParams::TopologyValue(key, names[e]);
      });
  distributing_ = params_.client.has_value() && !params_.distribute_rules.empty() &&
                  std::any_of(placed.begin(), placed.end(),
                              [](const auto& p) { return p.weight > 0 || p.excluded; });
  groups_.clear();
  ChildSpecs specs;
  for (size_t i = 0; i < placed.size(); ++i) {
    if (placed[i].excluded) continue;  // a locality no rule sends traffic to
    const std::string locality = names[i].ToString();
    const std::string key = absl::StrCat(placed[i].label_priority, "|", locality);
    groups_[key] = {placed[i].priority, placed[i].weight};
    ChildSpec& spec = specs[key];
    spec.name = locality;
    spec.config = params_.child_policy;
    spec.addresses.push_back(update.addresses[i]);
  }
  if (specs.empty()) {
    return absl::UnavailableError(absl::StrCat(
        kLocalityPolicyName,
        update.addresses.empty() ? ": the resolver returned an empty address list"
                                 : ": no endpoint is in a locality the distribute rule sends "
                                   "traffic to",
        update.resolution_note.empty() ? "" : ": ", update.resolution_note));
  }
  return specs;
}

std::vector<algorithms::PriorityHealth> LocalityPolicy::LevelHealth() const {
  uint32_t num_levels = 0;
  for (const auto& [key, group] : groups_) num_levels = std::max(num_levels, group.priority + 1);
  std::vector<algorithms::PriorityHealth> health(num_levels);
  for (const auto& [key, c] : children()) {
    const Group& group = groups_.at(key);
    health[group.priority].healthy += c->ready();
    health[group.priority].total += c->total();
  }
  return health;
}

std::vector<Level> LocalityPolicy::BuildLevels(const algorithms::PriorityLoad& load) const {
  std::vector<Level> levels;
  uint32_t cumulative = 0;
  for (uint32_t p = 0; p < load.percent.size(); ++p) {
    if (load.percent[p] == 0) continue;
    Level level;
    double total_weight = 0;
    for (const auto& [key, c] : children()) {
      const Group& group = groups_.at(key);
      // Only a READY locality can take a call: gRPC has no way to send one
      // to an endpoint that is not READY, so where Envoy's panic mode sends
      // traffic to unhealthy hosts, lbkit's spreads it over the READY ones
      // of the panicking level (see README).
      if (group.priority != p || c->state() != GRPC_CHANNEL_READY || c->picker() == nullptr) {
        continue;
      }
      // Without distribute, one pool per level, as Envoy balances the hosts
      // of a priority: each locality in proportion to its healthy endpoints.
      const double weight =
          distributing_ && !load.panic[p]
              ? algorithms::EffectiveLocalityWeight(group.weight, c->ready(), c->total(),
                                                    params_.overprovisioning_factor)
              : static_cast<double>(c->ready());
      if (weight <= 0) continue;
      total_weight += weight;
      level.pickers.push_back(c->picker());
      level.cumulative_weight.push_back(total_weight);
    }
    if (level.pickers.empty()) continue;  // its share goes to the next level drawn
    cumulative += load.percent[p];
    level.cumulative_percent = cumulative;
    levels.push_back(std::move(level));
  }
  // Shares of levels skipped above go to the others in proportion: the
  // last level's cumulative share is the draw's upper bound.
  if (!levels.empty() && levels.back().cumulative_percent != 100) {
    const uint32_t top = levels.back().cumulative_percent;
    for (Level& level : levels) level.cumulative_percent = level.cumulative_percent * 100 / top;
    levels.back().cumulative_percent = 100;
  }
  return levels;
}

ParentPolicy::PickerUpdate LocalityPolicy::MakePickerLocked() {
  bool any_ready = false, any_connecting = false;
  absl::Status failure;
  // What this policy can pick from, for a parent above it: every level's
  // serving endpoints, standby levels included.
  size_t serving = 0;
  for (const auto& [key, c] : children()) {
    serving += c->ready();
    switch (c->state()) {
      case GRPC_CHANNEL_READY: any_ready = true; break;
      case GRPC_CHANNEL_TRANSIENT_FAILURE:
        if (failure.ok()) failure = c->status();
        break;
      default: any_connecting = true;
    }
  }
  if (!any_ready) {
    if (any_connecting) return Queue();
    return Fail(absl::UnavailableError(absl::StrCat(
        kLocalityPolicyName, ": every locality is failing; last error: ", failure.ToString())));
  }
  const algorithms::PriorityLoad load = algorithms::ComputePriorityLoad(
      LevelHealth(), params_.overprovisioning_factor, params_.panic_threshold);
  std::vector<Level> levels = BuildLevels(load);
  // READY children but no level with load and a picker: cannot happen with
  // consistent counts; queue rather than fail.
  if (levels.empty()) return Queue();
  policy_stats()->SetDetailJson(DetailJson(load));
  return {GRPC_CHANNEL_READY, absl::OkStatus(),
          std::make_unique<LocalityPicker>(std::move(levels), serving)};
}

std::string LocalityPolicy::DetailJson(const algorithms::PriorityLoad& load) const {
  std::vector<std::string> levels, groups;
  for (size_t p = 0; p < load.percent.size(); ++p) {
    levels.push_back(absl::StrCat("{\"priority\":", p, ",\"percent\":", load.percent[p],
                                  ",\"panic\":", load.panic[p] ? "true" : "false", "}"));
  }
  for (const auto& [key, c] : children()) {
    const Group& group = groups_.at(key);
    groups.push_back(absl::StrCat("{\"locality\":", stats::JsonString(c->name()),
                                  ",\"priority\":", group.priority, ",\"ready\":", c->ready(),
                                  ",\"total\":", c->total(), ",\"weight\":", group.weight,
                                  "}"));
  }
  return absl::StrCat("{\"levels\":[", absl::StrJoin(levels, ","), "],\"localities\":[",
                      absl::StrJoin(groups, ","), "]}");
}

}  // namespace

void RegisterLocality(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<LocalityPolicy, LocalityParams>>(kLocalityPolicyName));
}

}  // namespace lbkit::policies
