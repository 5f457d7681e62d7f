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
#include "common/endpoint_attributes.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
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
    {
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

LocalityName ToName(const Locality& l) { return {l.region, l.zone, l.sub_zone}; }

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

class LocalityPolicy : public LoadBalancingPolicy, public ChildPolicy::Owner {
 public:
  explicit LocalityPolicy(Args args)
      : LoadBalancingPolicy(std::move(args)),
        stats_(stats::PolicyStats::Register(std::string(kLocalityPolicyName),
                                            /*counts_calls=*/false)) {}

  absl::string_view name() const override { return kLocalityPolicyName; }

  absl::Status UpdateLocked(UpdateArgs args) override;
  void ExitIdleLocked() override {
    for (auto& [key, group] : groups_) group.child->ExitIdleLocked();
  }
  void ResetBackoffLocked() override {
    for (auto& [key, group] : groups_) group.child->ResetBackoffLocked();
  }
  void OnChildChangedLocked() override {
    if (!updating_) UpdatePickerLocked();
  }

 private:
  struct Group {
    uint32_t priority = 0;
    uint64_t weight = 0;  // distribute weight; 0 = pool by healthy endpoints
    grpc_core::OrphanablePtr<ChildPolicy> child;
  };

  void ShutdownLocked() override {
    shutdown_ = true;
    groups_.clear();
  }

  void ReportTransientFailureLocked(absl::Status status) {
    PublishLocked(GRPC_CHANNEL_TRANSIENT_FAILURE, status,
                  std::make_unique<TransientFailurePicker>(status));
  }

  void UpdatePickerLocked();
  // The levels and localities as lbkit::DumpState() shows them.
  std::string DetailJson(const algorithms::PriorityLoad& load) const {
    std::vector<std::string> levels, groups;
    for (size_t p = 0; p < load.percent.size(); ++p) {
      levels.push_back(absl::StrCat("{\"priority\":", p, ",\"percent\":", load.percent[p],
                                    ",\"panic\":", load.panic[p] ? "true" : "false", "}"));
    }
    for (const auto& [key, group] : groups_) {
      groups.push_back(absl::StrCat(
          "{\"locality\":", stats::JsonString(group.child->name()), ",\"priority\":",
          group.priority, ",\"ready\":", group.child->ready(), ",\"total\":",
          group.child->total(), ",\"weight\":", group.weight, "}"));
    }
    return absl::StrCat("{\"levels\":[", absl::StrJoin(levels, ","), "],\"localities\":[",
                        absl::StrJoin(groups, ","), "]}");
  }

  void PublishLocked(grpc_connectivity_state state, const absl::Status& status,
                     std::unique_ptr<SubchannelPicker> picker) {
    stats_->CountPickerUpdate();
    channel_control_helper()->UpdateState(state, status, std::move(picker));
  }

  const std::shared_ptr<stats::PolicyStats> stats_;
  RefCountedPtr<Config> config_;
  bool distributing_ = false;
  std::map<std::string, Group> groups_;  // by "<label priority>|<locality>"
  bool updating_ = false;
  bool shutdown_ = false;
};

absl::Status LocalityPolicy::UpdateLocked(UpdateArgs args) {
  if (shutdown_) return absl::OkStatus();
  if (args.config != nullptr) config_ = std::move(args.config);
  const LocalityParams& configured = ParamsOf<LocalityParams>(*config_);
  // Without `locality` or $LBKIT_LOCALITY, the resolver may know where the
  // client is (lbkit-k8s: the client pod's node).
  LocalityParams from_resolver;
  const LocalityParams* chosen = &configured;
  if (!configured.client.has_value()) {
    if (auto arg = args.args.GetString(kClientLocalityChannelArg); arg.has_value()) {
      if (auto client = algorithms::ParseLocalityName(std::string_view(arg->data(), arg->size()));
          client.has_value()) {
        from_resolver = configured;
        from_resolver.client = std::move(client);
        chosen = &from_resolver;
      }
    }
  }
  const LocalityParams& params = *chosen;
  stats_->SetTarget(ChannelTarget(args.args, channel_control_helper()));
  stats_->SetConfigJson(ConfigJson(config_.get()));
  if (!args.addresses.ok()) {
    stats_->CountResolverError(args.addresses.status().ToString());
    // Keep what we have; with nothing, the resolver's error explains.
    if (groups_.empty()) ReportTransientFailureLocked(args.addresses.status());
    return args.addresses.status();
  }

  // Each address's locality and raw priority.
  struct Placed {
    LocalityName locality;
    uint32_t label_priority;  // from failoverPriority
    uint32_t priority;        // label_priority x 5 + proximity
  };
  std::vector<Placed> placed;
  std::vector<LocalityName> localities;  // distinct, in first-seen order
  std::map<LocalityName, size_t> locality_index;
  std::vector<uint64_t> locality_endpoints;
  for (const grpc_core::ServerAddress& address : *args.addresses) {
    const EndpointAttributes* attrs = GetEndpointAttributes(address);
    LocalityName name = attrs != nullptr ? ToName(attrs->locality) : LocalityName{};
    auto [it, inserted] = locality_index.emplace(name, localities.size());
    if (inserted) {
      localities.push_back(name);
      locality_endpoints.push_back(0);
    }
    ++locality_endpoints[it->second];
    uint32_t priority = 0, label_priority = 0;
    // Istio applies proximity (region/zone/subZone, and failover rules)
    // under failoverPriority only when failover is set too; with
    // failoverPriority alone the levels come from the labels alone
    // (docs/istio.md, "failoverPriority").
    const bool proximity = params.failover_priority.empty() || !params.failover_rules.empty();
    // With distribute rules Istio sets no priorities at all: a client no
    // rule's `from` covers gets no locality preference (docs/istio.md).
    const bool prioritised = params.distribute_rules.empty();
    if (params.client.has_value() && proximity && prioritised) {
      priority = algorithms::ProximityPriority(*params.client, name, params.failover_rules);
    }
    if (!params.failover_priority.empty() && prioritised) {
      label_priority = algorithms::LabelPriority(
          params.failover_priority.size(), [&](size_t i) { return params.ClientValue(i); },
          [&](size_t i) -> std::optional<std::string> {
            const std::string key = params.Key(i);
            if (attrs != nullptr) {
              auto label = attrs->labels.find(key);
              if (label != attrs->labels.end()) return label->second;
            }
            return LocalityParams::TopologyValue(key, name);
          });
      priority = label_priority * 5 + priority;
    }
    placed.push_back({std::move(name), label_priority, priority});
  }
  std::optional<std::vector<uint64_t>> distribute_weights;
  if (params.client.has_value() && !params.distribute_rules.empty()) {
    distribute_weights = algorithms::DistributeWeights(*params.client, params.distribute_rules,
                                                       localities, locality_endpoints);
  }
  distributing_ = distribute_weights.has_value();
  std::vector<uint32_t> raw;
  for (const Placed& p : placed) raw.push_back(distributing_ ? 0 : p.priority);
  const std::vector<uint32_t> priorities = algorithms::CompactPriorities(raw);

  // Addresses per group: a locality, split by failoverPriority labels. The
  // level is the group's attribute, not its identity, so a change of level
  // (the client moved, a failover rule changed) keeps its connections.
  std::map<std::string, std::pair<Group, grpc_core::ServerAddressList>> wanted;
  for (size_t i = 0; i < placed.size(); ++i) {
    const size_t li = locality_index[placed[i].locality];
    const uint64_t weight = distributing_ ? (*distribute_weights)[li] : 0;
    if (distributing_ && weight == 0) continue;  // a locality no rule sends traffic to
    auto& entry =
        wanted[absl::StrCat(placed[i].label_priority, "|", placed[i].locality.ToString())];
    entry.first.priority = priorities[i];
    entry.first.weight = weight;
    entry.second.push_back((*args.addresses)[i]);
  }

  updating_ = true;
  for (auto it = groups_.begin(); it != groups_.end();) {
    it = wanted.count(it->first) ? std::next(it) : groups_.erase(it);
  }
  std::vector<std::string> errors;
  for (auto& [key, entry] : wanted) {
    Group& group = groups_[key];  // in the map before its child can report
    group.priority = entry.first.priority;
    group.weight = entry.first.weight;
    if (group.child == nullptr) {
      group.child = grpc_core::MakeOrphanable<ChildPolicy>(
          key.substr(key.find('|') + 1), this, Ref(DEBUG_LOCATION, "ChildPolicy"),
          channel_control_helper(), work_serializer(), interested_parties(), args.args);
    }
    absl::Status status = group.child->UpdateLocked(std::move(entry.second),
                                                    params.child_policy, args.args,
                                                    args.resolution_note);
    if (!status.ok()) errors.push_back(absl::StrCat(group.child->name(), ": ", status.ToString()));
  }
  updating_ = false;

  if (groups_.empty()) {
    absl::Status status = absl::UnavailableError(absl::StrCat(
        kLocalityPolicyName,
        args.addresses->empty() ? ": the resolver returned an empty address list"
                                : ": no endpoint is in a locality the distribute rule sends "
                                  "traffic to",
        args.resolution_note.empty() ? "" : ": ", args.resolution_note));
    ReportTransientFailureLocked(status);
    return status;
  }
  UpdatePickerLocked();
  if (errors.empty()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(kLocalityPolicyName, ": [", absl::StrJoin(errors, "; "), "]"));
}

void LocalityPolicy::UpdatePickerLocked() {
  const LocalityParams& params = ParamsOf<LocalityParams>(*config_);
  uint32_t num_levels = 0;
  for (const auto& [key, group] : groups_) num_levels = std::max(num_levels, group.priority + 1);
  std::vector<algorithms::PriorityHealth> health(num_levels);
  bool any_ready = false, any_connecting = false;
  absl::Status failure;
  for (const auto& [key, group] : groups_) {
    health[group.priority].healthy += group.child->ready();
    health[group.priority].total += group.child->total();
    switch (group.child->state()) {
      case GRPC_CHANNEL_READY: any_ready = true; break;
      case GRPC_CHANNEL_TRANSIENT_FAILURE:
        if (failure.ok()) failure = group.child->status();
        break;
      default: any_connecting = true;
    }
  }
  if (!any_ready) {
    if (any_connecting) {
      PublishLocked(GRPC_CHANNEL_CONNECTING, absl::OkStatus(),
                    std::make_unique<QueuePicker>(Ref(DEBUG_LOCATION, "QueuePicker")));
    } else {
      ReportTransientFailureLocked(absl::UnavailableError(absl::StrCat(
          kLocalityPolicyName, ": every locality is failing; last error: ",
          failure.ToString())));
    }
    return;
  }

  const algorithms::PriorityLoad load = algorithms::ComputePriorityLoad(
      health, params.overprovisioning_factor, params.panic_threshold);
  std::vector<Level> levels;
  uint32_t cumulative = 0;
  // What this policy can pick from, for a parent above it: every level's
  // serving endpoints, standby levels included.
  size_t serving = 0;
  for (const auto& [key, group] : groups_) serving += group.child->ready();
  for (uint32_t p = 0; p < num_levels; ++p) {
    if (load.percent[p] == 0) continue;
    Level level;
    double total_weight = 0;
    for (const auto& [key, group] : groups_) {
      const ChildPolicy& child = *group.child;
      // Only a READY locality can take a call: gRPC has no way to send one
      // to an endpoint that is not READY, so where Envoy's panic mode sends
      // traffic to unhealthy hosts, lbkit's spreads it over the READY ones
      // of the panicking level (see README).
      if (group.priority != p || child.state() != GRPC_CHANNEL_READY ||
          child.picker() == nullptr) {
        continue;
      }
      // Without distribute, one pool per level, as Envoy balances the hosts
      // of a priority: each locality in proportion to its healthy endpoints.
      const double weight =
          distributing_ && !load.panic[p]
              ? algorithms::EffectiveLocalityWeight(group.weight, child.ready(), child.total(),
                                                    params.overprovisioning_factor)
              : static_cast<double>(child.ready());
      if (weight <= 0) continue;
      total_weight += weight;
      level.pickers.push_back(child.picker());
      level.cumulative_weight.push_back(total_weight);
    }
    if (level.pickers.empty()) continue;  // its share goes to the next level drawn
    cumulative += load.percent[p];
    level.cumulative_percent = cumulative;
    levels.push_back(std::move(level));
  }
  if (levels.empty()) {
    // READY children but no level with load and a picker: cannot happen
    // with consistent counts; queue rather than fail.
    PublishLocked(GRPC_CHANNEL_CONNECTING, absl::OkStatus(),
                  std::make_unique<QueuePicker>(Ref(DEBUG_LOCATION, "QueuePicker")));
    return;
  }
  // Shares of levels skipped above go to the others in proportion: the
  // last level's cumulative share is the draw's upper bound.
  const uint32_t top = levels.back().cumulative_percent;
  if (top != 100) {
    for (Level& level : levels) level.cumulative_percent = level.cumulative_percent * 100 / top;
    levels.back().cumulative_percent = 100;
  }
  stats_->SetDetailJson(DetailJson(load));
  PublishLocked(GRPC_CHANNEL_READY, absl::OkStatus(),
                std::make_unique<LocalityPicker>(std::move(levels), serving));
}

}  // namespace

void RegisterLocality(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<LocalityPolicy, LocalityParams>>(kLocalityPolicyName));
}

}  // namespace lbkit::policies
