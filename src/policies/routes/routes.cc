#include "policies/routes/routes.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc_internal/abi_guard.h"
#include "policies/common/child_policy.h"
#include "policies/common/policy_factory.h"
#include "policies/common/subset_router.h"
#include "policies/register.h"
#include "src/core/lib/channel/status_util.h"
#include "src/core/lib/gprpp/validation_errors.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"
#include "src/core/lib/load_balancing/lb_policy_registry.h"

namespace lbkit::policies {

namespace {

using grpc_core::Json;
using grpc_core::ValidationErrors;

constexpr absl::string_view kDefaultChildPolicy = R"([{"lbkit_round_robin": {}}])";

// A field of `object` that must have `type` when present.
const Json* Member(const Json::Object& object, const std::string& key, Json::Type type,
                   const char* what, ValidationErrors* errors) {
  auto it = object.find(key);
  if (it == object.end()) return nullptr;
  if (it->second.type() != type) {
    ValidationErrors::ScopedField field(errors, absl::StrCat(".", key));
    errors->AddError(absl::StrCat("is not ", what));
    return nullptr;
  }
  return &it->second;
}

std::vector<HeaderMatch> ParseHeaders(const Json::Object& headers, bool absent_or_different,
                                      ValidationErrors* errors) {
  std::vector<HeaderMatch> out;
  for (const auto& [name, value] : headers) {
    ValidationErrors::ScopedField field(errors, absl::StrCat(".", name));
    const std::string lower = absl::AsciiStrToLower(name);
    if (lower.empty() || lower[0] == ':') {
      errors->AddError("must be a request header name (not a pseudo-header)");
      continue;
    }
    if (auto m = ParseStringMatch(value, errors)) out.push_back({lower, *m, absent_or_different});
  }
  return out;
}

RouteMatch ParseMatch(const Json& json, ValidationErrors* errors) {
  RouteMatch match;
  if (json.type() != Json::Type::OBJECT) {
    errors->AddError("is not an object");
    return match;
  }
  const Json::Object& object = json.object_value();
  for (const auto& [key, value] : object) {
    if (key != "method" && key != "ignoreCase" && key != "headers" && key != "withoutHeaders") {
      ValidationErrors::ScopedField field(errors, absl::StrCat(".", key));
      errors->AddError("is not method, ignoreCase, headers or withoutHeaders");
    }
  }
  bool ignore_case = false;
  if (auto it = object.find("ignoreCase"); it != object.end()) {
    ValidationErrors::ScopedField field(errors, ".ignoreCase");
    if (it->second.type() == Json::Type::JSON_TRUE) {
      ignore_case = true;
    } else if (it->second.type() != Json::Type::JSON_FALSE) {
      errors->AddError("is not true or false");
    }
  }
  if (auto it = object.find("method"); it != object.end()) {
    ValidationErrors::ScopedField field(errors, ".method");
    match.method = ParseStringMatch(it->second, errors);
    if (match.method.has_value() && match.method->kind != StringMatch::Kind::kRegex) {
      match.method->ignore_case = ignore_case;
    }
  }
  for (const char* key : {"headers", "withoutHeaders"}) {
    if (const Json* h = Member(object, key, Json::Type::OBJECT, "an object", errors)) {
      ValidationErrors::ScopedField field(errors, absl::StrCat(".", key));
      for (HeaderMatch& m :
           ParseHeaders(h->object_value(), std::string(key) == "withoutHeaders", errors)) {
        match.headers.push_back(std::move(m));
      }
    }
  }
  return match;
}

// {"percentage": 10, "code": "UNAVAILABLE"}: that share of the route's
// calls fails with that status.
void ParseAbort(const Json& json, RouteSpec* route, ValidationErrors* errors) {
  if (json.type() != Json::Type::OBJECT) {
    errors->AddError("is not an object");
    return;
  }
  const Json::Object& object = json.object_value();
  route->abort_percent = 100;
  if (const Json* p = Member(object, "percentage", Json::Type::NUMBER, "a number", errors)) {
    ValidationErrors::ScopedField field(errors, ".percentage");
    double v = -1;
    if (!absl::SimpleAtod(p->string_value(), &v) || v < 0 || v > 100) {
      errors->AddError("must be in [0, 100]");
    }
    route->abort_percent = v;
  }
  ValidationErrors::ScopedField field(errors, ".code");
  const Json* code = Member(object, "code", Json::Type::STRING, "a string", errors);
  grpc_status_code status;
  if (code == nullptr) {
    if (errors->ok()) errors->AddError("missing");
  } else if (!grpc_status_code_from_string(code->string_value().c_str(), &status) ||
             status == GRPC_STATUS_OK) {
    errors->AddError("is not a gRPC status code name other than OK (e.g. UNAVAILABLE)");
  } else {
    route->abort_status = absl::Status(static_cast<absl::StatusCode>(status),
                                       absl::StrCat("lbkit_routes: fault injected by route \"",
                                                    route->name, "\""));
  }
}

void ParseSplit(const Json& json, const std::map<std::string, size_t>& subsets, RouteSpec* route,
                ValidationErrors* errors) {
  if (json.type() != Json::Type::ARRAY || json.array_value().empty()) {
    errors->AddError("must list at least one {subset, weight}");
    return;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < json.array_value().size(); ++i) {
    ValidationErrors::ScopedField entry(errors, absl::StrCat("[", i, "]"));
    const Json& e = json.array_value()[i];
    if (e.type() != Json::Type::OBJECT) {
      errors->AddError("is not an object");
      continue;
    }
    const Json* name = Member(e.object_value(), "subset", Json::Type::STRING, "a string", errors);
    const Json* weight = Member(e.object_value(), "weight", Json::Type::NUMBER, "a number", errors);
    uint32_t w = 0;
    {
      ValidationErrors::ScopedField field(errors, ".weight");
      if (weight == nullptr || !absl::SimpleAtoi(weight->string_value(), &w)) {
        errors->AddError("must be a whole number in [0, 4294967295]");
      }
    }
    ValidationErrors::ScopedField field(errors, ".subset");
    auto it = name == nullptr ? subsets.end() : subsets.find(name->string_value());
    if (it == subsets.end()) {
      errors->AddError(name == nullptr ? "missing"
                                       : absl::StrCat("\"", name->string_value(),
                                                      "\" is not in subsets"));
      continue;
    }
    route->split.emplace_back(it->second, w);
    total += w;
  }
  if (total == 0 && errors->ok()) errors->AddError("weights must not all be 0");
}

struct RouteSubsetJson {
  std::string name;
  std::map<std::string, std::string> labels;
  grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy::Config> child_policy;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader = grpc_core::JsonObjectLoader<RouteSubsetJson>()
                                    .Field("name", &RouteSubsetJson::name)
                                    .OptionalField("labels", &RouteSubsetJson::labels)
                                    .Finish();
    return loader;
  }
  void JsonPostLoad(const Json& json, const grpc_core::JsonArgs&, ValidationErrors* errors) {
    child_policy = ParseChildPolicyField(json, kDefaultChildPolicy, errors);
    ValidationErrors::ScopedField field(errors, ".name");
    if (!errors->FieldHasErrors() && name.empty()) errors->AddError("must not be empty");
  }
};

struct RoutesParams {
  std::vector<RouteSubsetJson> subsets;
  std::string on_empty_subset = "redistribute";
  RouterSpec router;

  static const grpc_core::JsonLoaderInterface* JsonLoader(const grpc_core::JsonArgs&) {
    static const auto* loader = grpc_core::JsonObjectLoader<RoutesParams>()
                                    .Field("subsets", &RoutesParams::subsets)
                                    .OptionalField("onEmptySubset", &RoutesParams::on_empty_subset)
                                    .Finish();
    return loader;
  }

  void JsonPostLoad(const Json& json, const grpc_core::JsonArgs&, ValidationErrors* errors) {
    {
      ValidationErrors::ScopedField field(errors, ".onEmptySubset");
      if (!errors->FieldHasErrors() && on_empty_subset != "redistribute" &&
          on_empty_subset != "fail") {
        errors->AddError("must be \"redistribute\" or \"fail\"");
      }
    }
    router.fail_empty_subsets = on_empty_subset == "fail";
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < subsets.size(); ++i) {
      if (!index.emplace(subsets[i].name, i).second) {
        ValidationErrors::ScopedField field(errors, absl::StrCat(".subsets[", i, "].name"));
        errors->AddError(absl::StrCat("\"", subsets[i].name, "\" names two subsets"));
      }
      router.subsets.push_back({subsets[i].name, subsets[i].labels, subsets[i].child_policy});
    }
    ValidationErrors::ScopedField field(errors, ".routes");
    auto routes = json.object_value().find("routes");
    if (routes == json.object_value().end() || routes->second.type() != Json::Type::ARRAY ||
        routes->second.array_value().empty()) {
      errors->AddError("must list at least one route");
      return;
    }
    const Json::Array& list = routes->second.array_value();
    for (size_t i = 0; i < list.size(); ++i) {
      ValidationErrors::ScopedField entry(errors, absl::StrCat("[", i, "]"));
      router.routes.push_back(ParseRoute(list[i], i, index, errors));
    }
  }

  static RouteSpec ParseRoute(const Json& json, size_t i, const std::map<std::string, size_t>& index,
                              ValidationErrors* errors) {
    RouteSpec route;
    route.name = absl::StrCat("routes[", i, "]");
    if (json.type() != Json::Type::OBJECT) {
      errors->AddError("is not an object");
      return route;
    }
    const Json::Object& object = json.object_value();
    for (const auto& [key, value] : object) {
      if (key != "name" && key != "match" && key != "abort" && key != "split") {
        ValidationErrors::ScopedField field(errors, absl::StrCat(".", key));
        errors->AddError("is not name, match, abort or split");
      }
    }
    if (const Json* name = Member(object, "name", Json::Type::STRING, "a string", errors)) {
      route.name = name->string_value();
    }
    if (const Json* match = Member(object, "match", Json::Type::ARRAY, "a list", errors)) {
      for (size_t m = 0; m < match->array_value().size(); ++m) {
        ValidationErrors::ScopedField field(errors, absl::StrCat(".match[", m, "]"));
        route.matches.push_back(ParseMatch(match->array_value()[m], errors));
      }
    }
    if (auto abort = object.find("abort"); abort != object.end()) {
      ValidationErrors::ScopedField field(errors, ".abort");
      ParseAbort(abort->second, &route, errors);
    }
    ValidationErrors::ScopedField field(errors, ".split");
    auto split = object.find("split");
    if (split == object.end()) {
      // A route that only aborts needs no subset.
      if (route.abort_percent < 100) errors->AddError("missing (only a route that aborts every call may omit it)");
    } else {
      ParseSplit(split->second, index, &route, errors);
    }
    return route;
  }
};

class Routes : public SubsetRouter {
 public:
  explicit Routes(Args args)
      : SubsetRouter(std::move(args), kRoutesPolicyName,
                     [](const Config& config) -> const RouterSpec& {
                       return ParamsOf<RoutesParams>(config).router;
                     }) {}
};

}  // namespace

void RegisterRoutes(grpc_core::CoreConfiguration::Builder* builder) {
  builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
      std::make_unique<ParamsPolicyFactory<Routes, RoutesParams>>(kRoutesPolicyName));
}

}  // namespace lbkit::policies
