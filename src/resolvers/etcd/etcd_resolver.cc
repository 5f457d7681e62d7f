#include "resolvers/etcd/etcd_resolver.h"

#include <chrono>
#include <functional>
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
#include "src/core/lib/event_engine/default_event_engine.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/resolver_registry.h"

namespace lbkit::resolvers {

namespace {

// Every live watch, by resolver, for EtcdWatches().
struct LiveWatch {
  std::weak_ptr<etcd::PrefixWatch> watch;
  std::string prefix;
};
absl::Mutex g_watches_mu;
std::map<const void*, LiveWatch>& Watches() {
  static auto* watches = new std::map<const void*, LiveWatch>();
  return *watches;
}

class EtcdResolver;

// What the watch's callbacks share with the resolver: the resolver's
// reference is dropped at shutdown, after which callbacks do nothing.
struct Link {
  absl::Mutex mu;
  grpc_core::RefCountedPtr<EtcdResolver> resolver ABSL_GUARDED_BY(mu);
  std::shared_ptr<grpc_core::WorkSerializer> serializer;

  // Runs fn(resolver) on the resolver's WorkSerializer, unless it has shut
  // down.
  void Post(std::function<void(EtcdResolver*)> fn) {
    grpc_core::RefCountedPtr<EtcdResolver> target;
    {
      absl::MutexLock lock(&mu);
      target = resolver;
    }
    if (target == nullptr) return;
    RunOnWorkSerializer(serializer, [target, fn = std::move(fn)]() { fn(target.get()); });
  }
};

class EtcdResolver : public grpc_core::Resolver {
 public:
  explicit EtcdResolver(grpc_core::ResolverArgs args)
      : uri_(args.uri),
        channel_args_(std::move(args.args)),
        work_serializer_(std::move(args.work_serializer)),
        result_handler_(std::move(args.result_handler)) {}

  void StartLocked() override;
  grpc_core::RefCountedPtr<EtcdResolver> RefAsSubclass() {
    Ref().release();
    return grpc_core::RefCountedPtr<EtcdResolver>(this);
  }
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
  // Per key, the last value that parsed and resolved, with its addresses:
  // a bad value never removes an endpoint (the key keeps its last good
  // one), only a delete does; an unchanged value is not resolved again.
  struct Good {
    std::string value;
    grpc_core::ServerAddressList addresses;
    std::string address;  // as written, for duplicate detection
  };
  std::map<std::string, Good> good_;
  // Keys whose value was logged as bad, with that value: one line per bad
  // value, not one per update.
  std::map<std::string, std::string> logged_bad_;
  // Keys whose current value failed (parse or name lookup), with the value
  // and why: retried only when the value changes.
  std::map<std::string, std::pair<std::string, absl::Status>> failed_;
  // Retrying the start when the etcd endpoints do not resolve.
  void StartWatchLocked();
  void ScheduleRetryLocked();
  std::chrono::milliseconds retry_backoff_{1000};
  absl::optional<grpc_event_engine::experimental::EventEngine::TaskHandle> retry_timer_;
  std::shared_ptr<grpc_event_engine::experimental::EventEngine> event_engine_;
};

void EtcdResolver::StartLocked() {
  auto target = ParseEtcdTarget(uri_.authority(), uri_.path());
  if (!target.ok()) {
    ReportErrorLocked(absl::StrCat(target.status().message(), " (target ", uri_.ToString(), ")"));
    return;
  }
  target_ = *std::move(target);
  StartWatchLocked();
}

void EtcdResolver::StartWatchLocked() {
  if (shutdown_) return;
  auto channel = etcd::CreateEtcdChannel(target_.endpoints);
  if (!channel.ok()) {
    // No member name resolves (DNS down at start-up?): say so, and try again.
    ReportErrorLocked(absl::StrCat(channel.status().message(), "; retrying in ",
                                   retry_backoff_.count(), " ms"));
    ScheduleRetryLocked();
    return;
  }
  link_ = std::make_shared<Link>();
  link_->serializer = work_serializer_;
  {
    absl::MutexLock lock(&link_->mu);
    link_->resolver = RefAsSubclass();
  }
  auto on_change = [link = link_](const etcd::PrefixWatch::Snapshot& snapshot) {
    link->Post([snapshot](EtcdResolver* resolver) { resolver->OnSnapshotLocked(snapshot); });
  };
  auto on_error = [link = link_](const absl::Status& error) {
    link->Post([error](EtcdResolver* resolver) { resolver->OnErrorLocked(error); });
  };
  watch_ = etcd::PrefixWatch::Start(*std::move(channel), target_.prefix, std::move(on_change),
                                    std::move(on_error));
  absl::MutexLock lock(&g_watches_mu);
  Watches()[this] = {watch_, target_.prefix};
}

void EtcdResolver::ScheduleRetryLocked() {
  if (event_engine_ == nullptr) {
    event_engine_ = grpc_event_engine::experimental::GetDefaultEventEngine();
  }
  const auto delay = retry_backoff_;
  retry_backoff_ = std::min(retry_backoff_ * 2, std::chrono::milliseconds(30000));
  retry_timer_ = event_engine_->RunAfter(delay, [self = RefAsSubclass()]() mutable {
    grpc_core::ApplicationCallbackExecCtx app_exec_ctx;
    grpc_core::ExecCtx exec_ctx;
    EtcdResolver* resolver = self.get();
    RunOnWorkSerializer(resolver->work_serializer_, [self = std::move(self)]() {
      self->retry_timer_.reset();
      self->StartWatchLocked();
    });
  });
}

void EtcdResolver::OnSnapshotLocked(const etcd::PrefixWatch::Snapshot& snapshot) {
  if (shutdown_) return;
  // Deleted keys go, with whatever they held.
  for (auto it = good_.begin(); it != good_.end();) {
    it = snapshot.count(it->first) ? std::next(it) : good_.erase(it);
  }
  for (auto it = logged_bad_.begin(); it != logged_bad_.end();) {
    auto now = snapshot.find(it->first);
    // Gone, or back to a value that is not the one logged: log anew next time.
    it = now != snapshot.end() && now->second == it->second ? std::next(it)
                                                             : logged_bad_.erase(it);
  }
  for (auto it = failed_.begin(); it != failed_.end();) {
    auto now = snapshot.find(it->first);
    it = now != snapshot.end() && now->second == it->second.first ? std::next(it)
                                                                   : failed_.erase(it);
  }
  grpc_core::ServerAddressList addresses;
  std::map<std::string, std::string> seen;  // address as written -> key
  std::string first_problem;
  for (const auto& [key, value] : snapshot) {
    absl::Status problem;
    auto known = good_.find(key);
    auto failed = failed_.find(key);
    if (failed != failed_.end() && failed->second.first == value) {
      // Known bad (or unresolvable): not parsed or looked up again for
      // every event under the prefix.
      problem = failed->second.second;
    } else if (known == good_.end() || known->second.value != value) {
      // New or changed: parse and resolve it (names only here, once).
      auto spec = ParseEndpointObject(value);
      if (spec.ok()) {
        auto resolved = ToServerAddresses({*spec});
        if (resolved.ok()) {
          known = good_.insert_or_assign(key, Good{value, *std::move(resolved), spec->address})
                      .first;
          logged_bad_.erase(key);
          failed_.erase(key);
        } else {
          problem = resolved.status();
        }
      } else {
        problem = spec.status();
      }
    }
    if (!problem.ok()) {
      auto logged = logged_bad_.find(key);
      if (logged == logged_bad_.end() || logged->second != value) {
        gpr_log(GPR_ERROR, "lbkit-etcd: skipping key %s: %s%s", key.c_str(),
                std::string(problem.message()).c_str(),
                known != good_.end() ? " (keeping its last good value)" : "");
        logged_bad_[key] = value;
      }
      failed_[key] = {value, problem};
      if (first_problem.empty()) first_problem = absl::StrCat(key, ": ", problem.message());
      if (known == good_.end()) continue;
    }
    auto [other, inserted] = seen.emplace(known->second.address, key);
    if (!inserted) {
      if (logged_bad_[key] != value) {
        gpr_log(GPR_ERROR, "lbkit-etcd: skipping key %s: address %s is also under %s",
                key.c_str(), known->second.address.c_str(), other->second.c_str());
        logged_bad_[key] = value;
      }
      continue;
    }
    for (const auto& address : known->second.addresses) addresses.push_back(address);
  }
  if (addresses.empty() && !first_problem.empty() && !have_result_) {
    // Keys exist but none is usable: the reason beats "empty address list".
    ReportErrorLocked(absl::StrCat("no usable endpoint under ", target_.prefix, "; ",
                                   first_problem));
    return;
  }
  have_result_ = true;
  last_error_.clear();
  Result result;
  result.addresses = std::move(addresses);
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
  if (retry_timer_.has_value()) {
    event_engine_->Cancel(*retry_timer_);
    retry_timer_.reset();
  }
  {
    absl::MutexLock lock(&g_watches_mu);
    Watches().erase(this);
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
  for (const auto& [key, live] : Watches()) {
    if (auto watch = live.watch.lock()) out.push_back({live.prefix, watch->peer(), watch->lists()});
  }
  return out;
}

void RegisterEtcdResolver(grpc_core::CoreConfiguration::Builder* builder) {
  builder->resolver_registry()->RegisterResolverFactory(
      std::make_unique<EtcdResolverFactory>());
}

}  // namespace lbkit::resolvers
