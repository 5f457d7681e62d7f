#include "resolvers/static/static_resolver.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/common/endpoint_spec.h"
#include "resolvers/register.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/resolver_registry.h"

namespace lbkit::resolvers {

namespace {

class StaticResolver : public grpc_core::Resolver {
 public:
  explicit StaticResolver(grpc_core::ResolverArgs args)
      : authority_(args.uri.authority()),
        endpoints_(absl::StripPrefix(args.uri.path(), "/")),
        channel_args_(std::move(args.args)),
        result_handler_(std::move(args.result_handler)) {}

  void StartLocked() override { Report(); }

  // The list is fixed, so there is nothing to re-read when a policy asks
  // after a failure; answering with a synchronous re-report would only loop
  // (DESIGN.md fact 12).
  void RequestReresolutionLocked() override {}

 private:
  void ShutdownLocked() override { result_handler_.reset(); }

  void Report() {
    Result result;
    result.args = channel_args_;
    auto specs = ParseEndpointList(endpoints_);
    if (!authority_.empty()) {
      // lbkit-static://10.0.0.1:50051 puts the list in the authority and
      // leaves nothing after it: say so, rather than "empty address list".
      specs = absl::InvalidArgumentError(absl::StrCat(
          "the endpoints go after three slashes, lbkit-static:///", authority_, endpoints_.empty() ? "" : "/", endpoints_,
          "; \"", authority_, "\" was read as the URI's authority"));
    } else if (specs.ok() && specs->empty()) {
      specs = absl::InvalidArgumentError(
          "no endpoint given (lbkit-static:///HOST:PORT[,HOST:PORT...])");
    }
    if (!specs.ok()) {
      result.addresses = absl::UnavailableError(absl::StrCat(
          kStaticScheme, ": ", specs.status().message()));
    } else {
      auto addresses = ToServerAddresses(*specs);
      if (addresses.ok()) {
        result.addresses = *std::move(addresses);
      } else {
        result.addresses = absl::UnavailableError(absl::StrCat(
            kStaticScheme, ": ", addresses.status().message()));
      }
    }
    result.service_config = nullptr;
    result_handler_->ReportResult(std::move(result));
  }

  const std::string authority_;
  const std::string endpoints_;
  const grpc_core::ChannelArgs channel_args_;
  std::unique_ptr<ResultHandler> result_handler_;
};

class StaticResolverFactory : public grpc_core::ResolverFactory {
 public:
  absl::string_view scheme() const override { return kStaticScheme; }

  // Every lbkit-static URI is "valid" to gRPC: a malformed endpoint list is
  // reported through the resolver, so RPCs fail with the reason instead of
  // the channel failing to be created with none.
  bool IsValidUri(const grpc_core::URI& /*uri*/) const override { return true; }

  grpc_core::OrphanablePtr<grpc_core::Resolver> CreateResolver(
      grpc_core::ResolverArgs args) const override {
    return grpc_core::MakeOrphanable<StaticResolver>(std::move(args));
  }

  std::string GetDefaultAuthority(const grpc_core::URI& /*uri*/) const override {
    return "lbkit-static";
  }
};

}  // namespace

void RegisterStaticResolver(grpc_core::CoreConfiguration::Builder* builder) {
  builder->resolver_registry()->RegisterResolverFactory(
      std::make_unique<StaticResolverFactory>());
}

}  // namespace lbkit::resolvers
