#include "resolvers/etcd/etcd_resolver.h"

#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/work_serializer_hop.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/etcd/etcd_client.h"
#include "resolvers/file/endpoints_file.h"
#include "resolvers/register.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/resolver_registry.h"

namespace lbkit::resolvers {

namespace {

// Every live watch, for EtcdWatches().
absl::Mutex g_watches_mu;
std::map<const void*, std::weak_ptr<etcd::PrefixWatch>>& Watches() {
  static auto* watches = new std::map<const void*, std::weak_ptr<etcd::PrefixWatch>>();
  return *watches;
}
std::map<const void*, std::string>& WatchPrefixes() {
  static auto* prefixes = new std::map<const void*, std::string>();
  return *prefixes;
}

class EtcdResolver;

// What the watch's callbacks share with the resolver: the resolver's
// reference is dropped at shutdown, after which callbacks do nothing.
struct Link {
  absl::Mutex mu;
  grpc_core::RefCountedPtr<EtcdResolver> resolver ABSL_GUARDED_BY(mu);
  std::shared_ptr<grpc_core::WorkSerializer> serializer;
};

class EtcdResolver : public grpc_core::Resolver {
 public:
  explicit EtcdResolver(grpc_core::ResolverArgs args)
      : uri_(args.uri),
        channel_args_(std::move(args.args)),
        work_serializer_(std::move(args.work_serializer)),
        result_handler_(std::move(args.result_handler)) {}

  void StartLocked() override;
  // The watch keeps the set current: there is nothing to re-resolve.
  void RequestReresolutionLocked() override {}

  void OnSnapshotLocked(const etcd::PrefixWatch::Snapshot& snapshot);
  void OnErrorLocked(const absl::Status& error);

 private:
  void ShutdownLocked() override;
  void ReportErrorLocked(absl::string_view message) {
    Result result;
    result.addresses = absl::UnavailableError(absl::StrCat(kEtcdScheme, ": ", message));
    result.args = channel_args_;
    result_handler_->ReportResult(std::move(result));
  }

  const grpc_core::URI uri_;
  const grpc_core::ChannelArgs channel_args_;
  std::shared_ptr<grpc_core::WorkSerializer> work_serializer_;
  std::unique_ptr<ResultHandler> result_handler_;
  EtcdTarget target_;
  std::shared_ptr<Link> link_;
  std::shared_ptr<etcd::PrefixWatch> watch_;
  bool shutdown_ = false;
  bool have_result_ = false;
  std::string last_error_;
  // Keys whose value was logged as bad, with that value: one line per bad
  // value, not one per update.
  std::map<std::string, std::string> logged_bad_;
};

void EtcdResolver::StartLocked() {
  auto target = ParseEtcdTarget(uri_.authority(), uri_.path());
  if (!target.ok()) {
    ReportErrorLocked(absl::StrCat(target.status().message(), " (target ", uri_.ToString(), ")"));
    return;
  }
  target_ = *std::move(target);
  auto channel = etcd::CreateEtcdChannel(target_.endpoints);
  if (!channel.ok()) {
    ReportErrorLocked(channel.status().message());
    return;
  }
  link_ = std::make_shared<Link>();
  link_->serializer = work_serializer_;
  {
    absl::MutexLock lock(&link_->mu);
    link_->resolver = Ref(DEBUG_LOCATION, "etcd watch");
  }
  auto on_change = [link = link_](const etcd::PrefixWatch::Snapshot& snapshot) {
    grpc_core::RefCountedPtr<EtcdResolver> resolver;
    {
      absl::MutexLock lock(&link->mu);
      resolver = link->resolver;
    }
    if (resolver == nullptr) return;
    RunOnWorkSerializer(link->serializer, [resolver, snapshot]() {
      resolver->OnSnapshotLocked(snapshot);
    });
  };
  auto on_error = [link = link_](const absl::Status& error) {
    grpc_core::RefCountedPtr<EtcdResolver> resolver;
    {
      absl::MutexLock lock(&link->mu);
      resolver = link->resolver;
    }
    if (resolver == nullptr) return;
    RunOnWorkSerializer(link->serializer, [resolver, error]() { resolver->OnErrorLocked(error); });
  };
  watch_ = etcd::PrefixWatch::Start(*std::move(channel), target_.prefix, std::move(on_change),
                                    std::move(on_error));
  absl::MutexLock lock(&g_watches_mu);
  Watches()[this] = watch_;
  WatchPrefixes()[this] = target_.prefix;
}

void EtcdResolver::OnSnapshotLocked(const etcd::PrefixWatch::Snapshot& snapshot) {
  if (shutdown_) return;
  std::vector<EndpointSpec> specs;
  std::map<std::string, std::string> seen;  // address -> key
  int bad = 0;
  for (const auto& [key, value] : snapshot) {
    auto spec = ParseEndpointObject(value);
    absl::Status problem;
    if (!spec.ok()) {
      problem = spec.status();
    } else if (auto [it, inserted] = seen.emplace(spec->address, key); !inserted) {
      problem = absl::InvalidArgumentError(
          absl::StrCat("address ", spec->address, " is also under ", it->second));
    }
    if (!problem.ok()) {
      ++bad;
      auto logged = logged_bad_.find(key);
      if (logged == logged_bad_.end() || logged->second != value) {
        gpr_log(GPR_ERROR, "lbkit-etcd: skipping key %s: %s", key.c_str(),
                std::string(problem.message()).c_str());
        logged_bad_[key] = value;
      }
      continue;
    }
    logged_bad_.erase(key);
    specs.push_back(*std::move(spec));
  }
  for (auto it = logged_bad_.begin(); it != logged_bad_.end();) {
    it = snapshot.count(it->first) ? std::next(it) : logged_bad_.erase(it);
  }
  if (specs.empty() && bad > 0 && have_result_) {
    gpr_log(GPR_ERROR,
            "lbkit-etcd: every value under %s is bad (%d keys); keeping the last good "
            "endpoint set",
            target_.prefix.c_str(), bad);
    return;
  }
  auto addresses = ToServerAddresses(specs);
  if (!addresses.ok()) {
    gpr_log(GPR_ERROR, "lbkit-etcd: %s; keeping the last good endpoint set",
            std::string(addresses.status().message()).c_str());
    if (!have_result_) ReportErrorLocked(addresses.status().message());
    return;
  }
  have_result_ = true;
  last_error_.clear();
  Result result;
  result.addresses = *std::move(addresses);
  result.args = channel_args_;
  result_handler_->ReportResult(std::move(result));
}

void EtcdResolver::OnErrorLocked(const absl::Status& error) {
  if (shutdown_) return;
  const std::string message(error.message());
  if (message != last_error_) {
    gpr_log(GPR_INFO, "lbkit-etcd: %s (%s)%s", message.c_str(), target_.endpoints.c_str(),
            have_result_ ? "; keeping the endpoint set" : "");
    last_error_ = message;
  }
  // Before the first list, calls fail with the reason; after it, the last
  // set stays (etcd being away says nothing about the servers).
  if (!have_result_) ReportErrorLocked(absl::StrCat(message, " (etcd at ", target_.endpoints, ")"));
}

void EtcdResolver::ShutdownLocked() {
  shutdown_ = true;
  {
    absl::MutexLock lock(&g_watches_mu);
    Watches().erase(this);
    WatchPrefixes().erase(this);
  }
  if (watch_ != nullptr) watch_->Shutdown();
  watch_.reset();
  if (link_ == nullptr) return;
  grpc_core::RefCountedPtr<EtcdResolver> self;  // released after the lock
  {
    absl::MutexLock lock(&link_->mu);
    self = std::move(link_->resolver);
  }
  link_.reset();
}

class EtcdResolverFactory : public grpc_core::ResolverFactory {
 public:
  absl::string_view scheme() const override { return kEtcdScheme; }
  // A bad target is reported through the resolver, so RPCs fail with the
  // reason instead of the channel failing to be created.
  bool IsValidUri(const grpc_core::URI& /*uri*/) const override { return true; }
  grpc_core::OrphanablePtr<grpc_core::Resolver> CreateResolver(
      grpc_core::ResolverArgs args) const override {
    return grpc_core::MakeOrphanable<EtcdResolver>(std::move(args));
  }
  // "/services/greeter/" -> "greeter"
  std::string GetDefaultAuthority(const grpc_core::URI& uri) const override {
    std::string path = uri.path();
    while (!path.empty() && path.back() == '/') path.pop_back();
    return path.substr(path.rfind('/') + 1);
  }
};

}  // namespace

std::string NormalizeEtcdPrefix(absl::string_view prefix) {
  std::string out(prefix);
  if (out.empty() || out.back() != '/') out.push_back('/');
  return out;
}

absl::StatusOr<EtcdTarget> ParseEtcdTarget(absl::string_view authority, absl::string_view path) {
  if (authority.empty()) {
    return absl::InvalidArgumentError(
        "the target must be lbkit-etcd://HOST:PORT[,HOST:PORT...]/KEY/PREFIX: no etcd "
        "endpoint given");
  }
  for (absl::string_view endpoint : absl::StrSplit(authority, ',')) {
    std::string host;
    uint16_t port;
    absl::Status split = SplitHostPort(endpoint, &host, &port);
    if (!split.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint \"", endpoint, "\": ", split.message()));
    }
  }
  if (path.empty() || path == "/") {
    return absl::InvalidArgumentError(
        "the target must name a key prefix, e.g. lbkit-etcd://127.0.0.1:2379/services/greeter/");
  }
  return EtcdTarget{std::string(authority), NormalizeEtcdPrefix(path)};
}

std::vector<EtcdWatchInfo> EtcdWatches() {
  std::vector<EtcdWatchInfo> out;
  absl::MutexLock lock(&g_watches_mu);
  for (const auto& [key, weak] : Watches()) {
    if (auto watch = weak.lock()) {
      out.push_back({WatchPrefixes()[key], watch->peer(), watch->lists()});
    }
  }
  return out;
}

void RegisterEtcdResolver(grpc_core::CoreConfiguration::Builder* builder) {
  builder->resolver_registry()->RegisterResolverFactory(
      std::make_unique<EtcdResolverFactory>());
}

}  // namespace lbkit::resolvers
