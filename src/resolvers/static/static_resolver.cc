#include "resolvers/static/static_resolver.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <ratio>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "common/detached_work.h"
#include "common/work_serializer_hop.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/common/endpoint_spec.h"
#include "resolvers/register.h"
#include "src/core/lib/event_engine/default_event_engine.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/resolver_registry.h"

namespace lbkit::resolvers {

namespace {

constexpr std::chrono::milliseconds kFirstRetry{1000};
constexpr std::chrono::milliseconds kMaxRetry{120000};

class StaticResolver : public grpc_core::Resolver {
 public:
  explicit StaticResolver(grpc_core::ResolverArgs args)
      : authority_(args.uri.authority()),
        endpoints_(absl::StripPrefix(args.uri.path(), "/")),
        channel_args_(std::move(args.args)),
        work_serializer_(std::move(args.work_serializer)),
        result_handler_(std::move(args.result_handler)) {}

  void StartLocked() override;
  grpc_core::RefCountedPtr<StaticResolver> RefAsStatic() {
    Ref().release();
    return grpc_core::RefCountedPtr<StaticResolver>(this);
  }

  // A list of IP literals is fixed: there is nothing to re-read when a
  // policy asks after a failure, and a synchronous re-report would only loop
  // (docs/grpc-internals.md, "Re-resolution"). Names are looked up again,
  // off the WorkSerializer, at most once per kMinLookupInterval.
  void RequestReresolutionLocked() override {
    if (!has_names_ || shutdown_) return;
    if (lookup_in_flight_) {
      lookup_again_ = true;
      return;
    }
    StartLookupLocked();
  }

 private:
  void ShutdownLocked() override {
    shutdown_ = true;
    if (retry_timer_.has_value()) {
      event_engine_->Cancel(*retry_timer_);
      retry_timer_.reset();
    }
    result_handler_.reset();
  }

  void ReportLocked(absl::StatusOr<grpc_core::ServerAddressList> addresses) {
    if (shutdown_) return;
    Result result;
    result.args = channel_args_;
    if (addresses.ok()) {
      result.addresses = *std::move(addresses);
    } else {
      result.addresses = absl::UnavailableError(
          absl::StrCat(kStaticScheme, ": ", addresses.status().message()));
    }
    result.service_config = nullptr;
    result_handler_->ReportResult(std::move(result));
  }

  // Name lookups block: they run on a thread of their own and report back
  // on the WorkSerializer. A failed lookup is retried with backoff (1 s,
  // doubling, at most 2 min), as gRPC's DNS resolver retries.
  void StartLookupLocked();
  void OnLookupLocked(absl::StatusOr<grpc_core::ServerAddressList> addresses);
  void ScheduleRetryLocked();

  const std::string authority_;
  const std::string endpoints_;
  const grpc_core::ChannelArgs channel_args_;
  const std::shared_ptr<grpc_core::WorkSerializer> work_serializer_;
  std::unique_ptr<ResultHandler> result_handler_;
  std::vector<EndpointSpec> specs_;
  bool has_names_ = false;
  bool shutdown_ = false;
  bool lookup_in_flight_ = false;
  bool lookup_again_ = false;
  std::chrono::steady_clock::time_point last_lookup_{};
  std::chrono::milliseconds retry_backoff_{kFirstRetry};
  absl::optional<grpc_event_engine::experimental::EventEngine::TaskHandle> retry_timer_;
  std::shared_ptr<grpc_event_engine::experimental::EventEngine> event_engine_;
};

// Re-resolution requests look names up again at most this often.
constexpr auto kMinLookupInterval = std::chrono::seconds(1);

void StaticResolver::StartLocked() {
  auto specs = ParseEndpointList(endpoints_);
  if (!authority_.empty()) {
    // lbkit-static://10.0.0.1:50051 puts the list in the authority and
    // leaves nothing after it: say so, rather than "empty address list".
    specs = absl::InvalidArgumentError(absl::StrCat(
        "the endpoints go after three slashes, lbkit-static:///", authority_,
        endpoints_.empty() ? "" : "/", endpoints_, "; \"", authority_,
        "\" was read as the URI's authority"));
  } else if (specs.ok() && specs->empty()) {
    specs = absl::InvalidArgumentError(
        "no endpoint given (lbkit-static:///HOST:PORT[,HOST:PORT...])");
  }
  if (!specs.ok()) {
    ReportLocked(specs.status());
    return;
  }
  specs_ = *std::move(specs);
  has_names_ = HasHostNames(specs_);
  if (!has_names_) {
    ReportLocked(ToServerAddresses(specs_));  // IP literals: nothing blocks
    return;
  }
  StartLookupLocked();
}

void StaticResolver::StartLookupLocked() {
  lookup_in_flight_ = true;
  lookup_again_ = false;
  const auto not_before = last_lookup_ + kMinLookupInterval;
  internal::RunDetached([self = RefAsStatic(), specs = specs_, not_before]() {
    std::this_thread::sleep_until(not_before);
    auto addresses = std::make_shared<absl::StatusOr<grpc_core::ServerAddressList>>(
        ToServerAddresses(specs));
    StaticResolver* resolver = self.get();
    internal::RunOnWorkSerializer(resolver->work_serializer_, [self, addresses]() {
      self->OnLookupLocked(std::move(*addresses));
    });
  });
}

void StaticResolver::OnLookupLocked(absl::StatusOr<grpc_core::ServerAddressList> addresses) {
  lookup_in_flight_ = false;
  last_lookup_ = std::chrono::steady_clock::now();
  if (shutdown_) return;
  const bool failed = !addresses.ok();
  ReportLocked(std::move(addresses));
  if (lookup_again_) {
    StartLookupLocked();
  } else if (failed) {
    ScheduleRetryLocked();
  } else {
    retry_backoff_ = kFirstRetry;
  }
}

void StaticResolver::ScheduleRetryLocked() {
  if (retry_timer_.has_value()) return;
  if (event_engine_ == nullptr) {
    event_engine_ = grpc_event_engine::experimental::GetDefaultEventEngine();
  }
  const auto delay = retry_backoff_;
  retry_backoff_ = std::min(retry_backoff_ * 2, kMaxRetry);
  retry_timer_ = internal::RunAfterOnWorkSerializer(
      event_engine_.get(), delay, work_serializer_, [self = RefAsStatic()]() {
        self->retry_timer_.reset();
        if (!self->shutdown_ && !self->lookup_in_flight_) self->StartLookupLocked();
      });
}

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
