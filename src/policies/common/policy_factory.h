// The config and factory every lbkit policy has: a Params struct parsed with
// gRPC's JSON object loader (so errors read "errors validating <name> LB
// policy config: [field:... error:...]"), carried in a ParamsConfig, and a
// factory that creates the policy.
//
//   struct MyParams { int x = 1; static const JsonLoaderInterface* JsonLoader(...); };
//   builder->lb_policy_registry()->RegisterLoadBalancingPolicyFactory(
//       std::make_unique<ParamsPolicyFactory<MyPolicy, MyParams>>("lbkit_my"));
//   ... in the policy: ParamsOf<MyParams>(config).x

#ifndef LBKIT_POLICIES_COMMON_POLICY_FACTORY_H_
#define LBKIT_POLICIES_COMMON_POLICY_FACTORY_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/json/json.h"
#include "src/core/lib/json/json_args.h"
#include "src/core/lib/json/json_object_loader.h"
#include "src/core/lib/load_balancing/lb_policy.h"
#include "src/core/lib/load_balancing/lb_policy_factory.h"

namespace lbkit::policies {

// Every lbkit policy's config keeps the JSON it was parsed from, for
// lbkit::DumpState().
class JsonConfig : public grpc_core::LoadBalancingPolicy::Config {
 public:
  explicit JsonConfig(std::string json) : json_(std::move(json)) {}
  const std::string& json() const { return json_; }

 private:
  std::string json_;
};

template <typename Params>
class ParamsConfig : public JsonConfig {
 public:
  ParamsConfig(absl::string_view name, Params params, std::string json)
      : JsonConfig(std::move(json)), name_(name), params_(std::move(params)) {}
  absl::string_view name() const override { return name_; }
  const Params& params() const { return params_; }

 private:
  absl::string_view name_;  // a policy-name constant
  Params params_;
};

// The channel's target URI, as the stats show it: the client channel passes
// it down in its args; the authority when it is not there.
inline std::string ChannelTarget(const grpc_core::ChannelArgs& args,
                                 grpc_core::LoadBalancingPolicy::ChannelControlHelper* helper) {
  if (auto uri = args.GetString("grpc.server_uri"); uri.has_value()) return std::string(*uri);
  return std::string(helper->GetAuthority());
}

// The JSON of a config an lbkit factory made ("{}" for anything else).
inline std::string ConfigJson(const grpc_core::LoadBalancingPolicy::Config* config) {
  if (config == nullptr || !absl::StartsWith(config->name(), "lbkit_")) return "{}";
  return static_cast<const JsonConfig*>(config)->json();
}

// The parsed params of a config this policy's factory made.
template <typename Params>
const Params& ParamsOf(const grpc_core::LoadBalancingPolicy::Config& config) {
  return static_cast<const ParamsConfig<Params>&>(config).params();
}

template <typename Policy, typename Params>
class ParamsPolicyFactory : public grpc_core::LoadBalancingPolicyFactory {
 public:
  explicit ParamsPolicyFactory(absl::string_view name)
      : name_(name),
        error_prefix_(absl::StrCat("errors validating ", name, " LB policy config")) {}

  grpc_core::OrphanablePtr<grpc_core::LoadBalancingPolicy> CreateLoadBalancingPolicy(
      grpc_core::LoadBalancingPolicy::Args args) const override {
    return grpc_core::MakeOrphanable<Policy>(std::move(args));
  }

  absl::string_view name() const override { return name_; }

  absl::StatusOr<grpc_core::RefCountedPtr<grpc_core::LoadBalancingPolicy::Config>>
  ParseLoadBalancingConfig(const grpc_core::Json& json) const override {
    auto params = grpc_core::LoadFromJson<Params>(json, grpc_core::JsonArgs(), error_prefix_);
    if (!params.ok()) return params.status();
    return grpc_core::MakeRefCounted<ParamsConfig<Params>>(name_, *std::move(params),
                                                           json.Dump());
  }

 private:
  absl::string_view name_;
  std::string error_prefix_;
};

}  // namespace lbkit::policies

#endif  // LBKIT_POLICIES_COMMON_POLICY_FACTORY_H_
