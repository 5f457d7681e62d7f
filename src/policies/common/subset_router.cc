#include "policies/common/subset_router.h"

#include <re2/re2.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "algorithms/random.h"
#include "algorithms/smooth_wrr.h"
#include "common/server_address_attributes.h"
#include "policies/common/policy_factory.h"
#include "policies/common/serving_count.h"
#include "src/core/lib/gprpp/debug_location.h"
#include "src/core/lib/resolver/server_address.h"

namespace lbkit::policies {

namespace {

using grpc_core::LoadBalancingPolicy;
using grpc_core::RefCountedPtr;
using grpc_core::ValidationErrors;

bool LabelsMatch(const std::map<std::string, std::string>& wanted,
                 const grpc_core::ServerAddress& address) {
  if (wanted.empty()) return true;
  const internal::EndpointAttributes* attrs = internal::GetEndpointAttributes(address);
  if (attrs == nullptr) return false;
  for (const auto& [k, v] : wanted) {
    auto it = attrs->labels.find(k);
    if (it == attrs->labels.end() || it->second != v) return false;
  }
  return true;
}

// A subset of a route in the picker: its child's picker, or null to fail its
// share.
struct PickerSubset {
  std::shared_ptr<LoadBalancingPolicy::SubchannelPicker> picker;
  const std::string* name;
};

struct PickerRoute {
  const RouteSpec* spec;
  std::vector<PickerSubset> subsets;
  std::vector<uint32_t> table;  // smooth weighted round robin over subsets
  bool waiting = false;         // no subset READY, one still connecting
  std::unique_ptr<std::atomic<uint64_t>> next = std::make_unique<std::atomic<uint64_t>>(0);
};

class RoutePicker : public LoadBalancingPolicy::SubchannelPicker, public ServingCount {
 public:
  RoutePicker(absl::string_view policy, RefCountedPtr<LoadBalancingPolicy::Config> config,
              std::vector<PickerRoute> routes, size_t serving)
      : policy_(policy), config_(std::move(config)), routes_(std::move(routes)),
        serving_(serving) {}

  LoadBalancingPolicy::PickResult Pick(LoadBalancingPolicy::PickArgs args) override {
    PickerRoute* route = Route(args);
    if (route == nullptr) {
      // Envoy answers 404 when no route matches, which a gRPC client sees
      // as UNIMPLEMENTED. A drop: no retry, no waiting for readiness.
      return LoadBalancingPolicy::PickResult::Drop(absl::UnimplementedError(
          absl::StrCat(policy_, ": no route matches ", args.path)));
    }
    const RouteSpec& spec = *route->spec;
    if (spec.abort_percent > 0 &&
        (spec.abort_percent >= 100 ||
         algorithms::UniformIndex(1000000) < spec.abort_percent * 10000)) {
      return LoadBalancingPolicy::PickResult::Drop(spec.abort_status);
    }
    if (route->table.empty()) {
      if (route->waiting) return LoadBalancingPolicy::PickResult::Queue();
      return LoadBalancingPolicy::PickResult::Fail(absl::UnavailableError(absl::StrCat(
          policy_, ": route \"", spec.name, "\" has no subset with a READY endpoint")));
    }
    const uint64_t ticket = route->next->fetch_add(1, std::memory_order_relaxed);
    const PickerSubset& subset = route->subsets[route->table[ticket % route->table.size()]];
    if (subset.picker == nullptr) {
      // A drop, not a failure: a failed pick makes wait_for_ready calls
      // wait (for a subset that may stay empty) until their deadline; the
      // subset's share must fail at once, whatever the call's kind.
      return LoadBalancingPolicy::PickResult::Drop(absl::UnavailableError(
          absl::StrCat(policy_, ": subset \"", *subset.name,
                       "\" has no READY endpoint (onEmptySubset: fail)")));
    }
    return ChildPolicy::Unwrap(subset.picker->Pick(args));
  }
  std::optional<size_t> ServingEndpoints() const override { return serving_; }

 private:
  PickerRoute* Route(const LoadBalancingPolicy::PickArgs& args) {
    for (PickerRoute& route : routes_) {
      if (route.spec->matches.empty()) return &route;
      for (const RouteMatch& match : route.spec->matches) {
        if (match.Matches(args)) return &route;
      }
    }
    return nullptr;
  }

  const absl::string_view policy_;
  // Keeps the RouteSpecs the routes point into.
  const RefCountedPtr<LoadBalancingPolicy::Config> config_;
  std::vector<PickerRoute> routes_;
  const size_t serving_;
};

}  // namespace

bool StringMatch::Matches(absl::string_view text) const {
  switch (kind) {
    case Kind::kExact:
      return ignore_case ? absl::EqualsIgnoreCase(text, value) : text == value;
    case Kind::kPrefix:
      return ignore_case ? absl::StartsWithIgnoreCase(text, value) : absl::StartsWith(text, value);
    case Kind::kRegex:
      return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *regex);
    case Kind::kPresent:
      return true;
  }
  return false;
}

std::optional<StringMatch> ParseStringMatch(const grpc_core::Json& json,
                                            ValidationErrors* errors) {
  if (json.type() != grpc_core::Json::Type::OBJECT) {
    errors->AddError("must be an object with one of exact, prefix, regex, present");
    return std::nullopt;
  }
  std::optional<StringMatch> out;
  for (const auto& [key, value] : json.object_value()) {
    ValidationErrors::ScopedField field(errors, absl::StrCat(".", key));
    StringMatch m;
    if (key == "exact") {
      m.kind = StringMatch::Kind::kExact;
    } else if (key == "prefix") {
      m.kind = StringMatch::Kind::kPrefix;
    } else if (key == "regex") {
      m.kind = StringMatch::Kind::kRegex;
    } else if (key == "present") {
      m.kind = StringMatch::Kind::kPresent;
      if (value.type() != grpc_core::Json::Type::JSON_TRUE) {
        errors->AddError("must be true");
        continue;
      }
      if (out.has_value()) {
        errors->AddError("only one of exact, prefix, regex, present may be set");
        continue;
      }
      out = std::move(m);
      continue;
    } else {
      errors->AddError("is not exact, prefix, regex or present");
      continue;
    }
    if (value.type() != grpc_core::Json::Type::STRING) {
      errors->AddError("is not a string");
      continue;
    }
    if (out.has_value()) {
      errors->AddError("only one of exact, prefix, regex, present may be set");
      continue;
    }
    m.value = value.string_value();
    if (m.kind == StringMatch::Kind::kRegex) {
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<const RE2>(m.value, options);
      if (!re->ok()) {
        errors->AddError(absl::StrCat("is not an RE2 regular expression: ", re->error()));
        continue;
      }
      m.regex = std::move(re);
    }
    out = std::move(m);
  }
  if (!out.has_value() && errors->ok()) {
    errors->AddError("must set one of exact, prefix, regex, present");
  }
  return out;
}

bool RouteMatch::Matches(LoadBalancingPolicy::PickArgs args) const {
  if (method.has_value() && !method->Matches(args.path)) return false;
  for (const HeaderMatch& h : headers) {
    absl::optional<absl::string_view> value;
    std::string buffer;
    if (args.initial_metadata != nullptr) value = args.initial_metadata->Lookup(h.name, &buffer);
    bool matched;
    if (h.match.kind == StringMatch::Kind::kPresent) {
      matched = value.has_value();
    } else if (h.absent_or_different) {
      // Istio's withoutHeaders reads a missing header as "" (Envoy's
      // treat_missing_header_as_empty).
      matched = h.match.Matches(value.value_or(""));
    } else {
      matched = value.has_value() && h.match.Matches(*value);
    }
    if (matched == h.absent_or_different) return false;
  }
  return true;
}

SubsetRouter::SubsetRouter(Args args, absl::string_view name, SpecOf spec_of)
    : ParentPolicy(std::move(args), name), spec_of_(spec_of) {}

absl::StatusOr<ParentPolicy::ChildSpecs> SubsetRouter::ChildrenForLocked(
    const AddressUpdate& update) {
  // An endpoint joins every subset whose labels it carries; one that matches
  // none gets no traffic (and no connection).
  ChildSpecs specs;
  for (const SubsetSpec& subset : spec_of_(config()).subsets) {
    ChildSpec& spec = specs[subset.name];
    spec.name = subset.name;
    spec.config = subset.child_policy;
    for (const auto& address : update.addresses) {
      if (LabelsMatch(subset.labels, address)) spec.addresses.push_back(address);
    }
  }
  return specs;
}

// Each subset's child (null without one) and its line in DumpState().
std::vector<const ChildPolicy*> SubsetRouter::SubsetChildrenLocked() {
  const RouterSpec& spec = spec_of_(config());
  std::vector<const ChildPolicy*> out(spec.subsets.size(), nullptr);
  std::vector<std::string> detail;
  for (size_t i = 0; i < spec.subsets.size(); ++i) {
    const ChildPolicy* c = child(spec.subsets[i].name);
    if (c == nullptr) continue;
    out[i] = c;
    // With one route (lbkit_weighted_subsets), each subset's weight too.
    std::string weight;
    if (spec.routes.size() == 1) {
      uint64_t w = 0;
      for (const auto& [index, subset_weight] : spec.routes[0].split) {
        if (index == i) w += subset_weight;
      }
      weight = absl::StrCat(",\"weight\":", w);
    }
    detail.push_back(absl::StrCat("{\"name\":", stats::JsonString(spec.subsets[i].name), weight,
                                  ",\"endpoints\":", c->total(), ",\"ready\":", c->ready(),
                                  ",\"state\":\"", stats::ConnectivityName(c->state()), "\"}"));
  }
  policy_stats()->SetDetailJson(absl::StrCat("{\"subsets\":[", absl::StrJoin(detail, ","), "]}"));
  return out;
}

namespace {

bool Ready(const ChildPolicy& c) {
  return c.state() == GRPC_CHANNEL_READY && c.picker() != nullptr;
}

// `route` in the picker: its split over the subsets that can take calls (and,
// with fail_empty_subsets, the empty ones that fail their share). Adds the
// serving endpoints of subsets not counted yet to `serving`.
PickerRoute BuildRoute(const RouteSpec& route, const RouterSpec& spec,
                       const std::vector<const ChildPolicy*>& child, std::vector<bool>* counted,
                       size_t* serving) {
  PickerRoute r;
  r.spec = &route;
  std::vector<uint64_t> weights;
  for (const auto& [index, weight] : route.split) {
    const ChildPolicy* c = child[index];
    if (c == nullptr || weight == 0) continue;
    const bool ready = Ready(*c);
    if (!ready && c->state() != GRPC_CHANNEL_TRANSIENT_FAILURE && c->total() > 0) {
      r.waiting = true;
    }
    if (!ready && !spec.fail_empty_subsets) continue;
    r.subsets.push_back({ready ? c->picker() : nullptr, &spec.subsets[index].name});
    weights.push_back(weight);
    if (ready && !(*counted)[index]) {
      (*counted)[index] = true;
      *serving += c->ready();
    }
  }
  // A route whose every share would fail waits while a subset connects.
  bool any = false;
  for (const PickerSubset& s : r.subsets) any = any || s.picker != nullptr;
  if (any) {
    r.table = algorithms::SmoothWrrTable(weights);
  } else {
    r.subsets.clear();
  }
  return r;
}

}  // namespace

ParentPolicy::PickerUpdate SubsetRouter::MakePickerLocked() {
  const RouterSpec& spec = spec_of_(config());
  const std::vector<const ChildPolicy*> child = SubsetChildrenLocked();
  bool any_ready = false, any_connecting = false;
  absl::Status failure;
  for (const ChildPolicy* c : child) {
    if (c == nullptr) continue;
    if (Ready(*c)) {
      any_ready = true;
    } else if (c->state() == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      if (failure.ok()) failure = c->status();
    } else if (c->total() > 0) {
      any_connecting = true;
    }
  }
  std::vector<PickerRoute> routes;
  std::vector<bool> counted(spec.subsets.size(), false);
  size_t serving = 0;
  bool any_route = false;
  for (const RouteSpec& route : spec.routes) {
    routes.push_back(BuildRoute(route, spec, child, &counted, &serving));
    any_route = any_route || !routes.back().table.empty();
  }
  if (any_ready && any_route) {
    return {GRPC_CHANNEL_READY, absl::OkStatus(),
            std::make_unique<RoutePicker>(name(), config_ref(), std::move(routes), serving)};
  }
  if (any_connecting) return Queue();
  return Fail(absl::UnavailableError(
      absl::StrCat(name(), ": no subset with traffic has a READY endpoint",
                   failure.ok() ? "" : "; last error: ", failure.ok() ? "" : failure.ToString())));
}

}  // namespace lbkit::policies
