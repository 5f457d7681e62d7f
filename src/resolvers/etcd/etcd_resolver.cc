#include "resolvers/etcd/etcd_resolver.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <ratio>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "common/detached_work.h"
#include "common/work_serializer_hop.h"
#include "grpc_internal/abi_guard.h"
#include "resolvers/common/address_lookup.h"
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
    internal::RunOnWorkSerializer(serializer, [target, fn = std::move(fn)]() { fn(target.get()); });
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
  // The watch keeps the set current; what a policy's request can still
  // mend is a name in a value that failed to resolve: it is looked up again
  // (off the WorkSerializer, reported when done, never synchronously), at
  // most once a second.
  void RequestReresolutionLocked() override {
    const auto now = std::chrono::steady_clock::now();
    if (now < last_retry_ + std::chrono::seconds(1)) return;
    RetryFailedLookupsLocked();
  }

  void OnSnapshotLocked(const etcd::PrefixWatch::Snapshot& snapshot);
  void OnErrorLocked(const absl::Status& error);

 private:
  // A value's name lookup, done off the WorkSerializer.
  struct Lookup {
    std::string key;
    std::string value;
    EndpointSpec spec;
    absl::StatusOr<grpc_core::ServerAddressList> addresses = absl::UnknownError("not yet");
  };

  void ShutdownLocked() override;
  void ReportErrorLocked(absl::string_view message) {
    Result result;
    result.addresses = absl::UnavailableError(absl::StrCat(kEtcdScheme, ": ", message));
    result.args = channel_args_;
    result_handler_->ReportResult(std::move(result));
  }
  // Parses new and changed values (and, with `retry_lookups`, values whose
  // name failed to resolve), resolves IP literals at once and starts the
  // lookups of names, then reports.
  void ReconcileLocked(bool retry_lookups);
  void RetryFailedLookupsLocked();
  // A name that failed is also retried on a timer (1 s, doubling to 2 min),
  // as lbkit-static's are: nothing else may ever ask (a channel with no
  // endpoint has no policy to request re-resolution).
  void ScheduleLookupRetryLocked();
  std::chrono::steady_clock::time_point last_retry_{};
  std::chrono::milliseconds lookup_backoff_{1000};
  absl::optional<grpc_event_engine::experimental::EventEngine::TaskHandle> lookup_timer_;
  void StartLookupsLocked(std::vector<Lookup> lookups);
  void OnLookupsDoneLocked(std::vector<Lookup> lookups);
  // Marks `key`'s current value bad (logging it once per value).
  void MarkFailedLocked(const std::string& key, const std::string& value, absl::Status problem,
                        bool lookup);
  // Reports the addresses of every key's last good value.
  void ReportLocked();

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
  // The latest listing of the prefix.
  etcd::PrefixWatch::Snapshot snapshot_;
  int lists_seen_ = 0;
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
  // Keys whose current value failed, with the value and why. A value that
  // does not parse is tried again only when it changes; one whose name did
  // not resolve also on the next re-list and re-resolution request.
  struct Failed {
    std::string value;
    absl::Status problem;
    bool lookup = false;
  };
  std::map<std::string, Failed> failed_;
  // Keys (with the value) whose name lookup is running.
  std::map<std::string, std::string> looking_up_;
  // Starting the watch: the etcd members' names are resolved off the
  // WorkSerializer, and the start is retried while none resolves.
  void StartWatchLocked();
  void OnChannelLocked(absl::StatusOr<std::shared_ptr<grpc::Channel>> channel);
  void ScheduleRetryLocked();
  // Runs `retry` on the WorkSerializer after `*backoff` (then doubled, at
  // most `max`), unless `*timer` is already armed; ShutdownLocked cancels.
  void ArmRetryLocked(
      absl::optional<grpc_event_engine::experimental::EventEngine::TaskHandle>* timer,
      std::chrono::milliseconds* backoff, std::chrono::milliseconds max,
      void (EtcdResolver::*retry)());
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
  internal::RunDetached([self = RefAsSubclass(), endpoints = target_.endpoints]() {
    auto channel = std::make_shared<absl::StatusOr<std::shared_ptr<grpc::Channel>>>(
        etcd::CreateEtcdChannel(endpoints));
    EtcdResolver* resolver = self.get();
    internal::RunOnWorkSerializer(resolver->work_serializer_, [self, channel]() {
      self->OnChannelLocked(std::move(*channel));
    });
  });
}

void EtcdResolver::OnChannelLocked(absl::StatusOr<std::shared_ptr<grpc::Channel>> channel) {
  if (shutdown_) return;
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
  ArmRetryLocked(&retry_timer_, &retry_backoff_, std::chrono::milliseconds(30000),
                 &EtcdResolver::StartWatchLocked);
}

void EtcdResolver::ArmRetryLocked(
    absl::optional<grpc_event_engine::experimental::EventEngine::TaskHandle>* timer,
    std::chrono::milliseconds* backoff, std::chrono::milliseconds max,
    void (EtcdResolver::*retry)()) {
  if (timer->has_value()) return;
  if (event_engine_ == nullptr) {
    event_engine_ = grpc_event_engine::experimental::GetDefaultEventEngine();
  }
  const auto delay = *backoff;
  *backoff = std::min(*backoff * 2, max);
  // `timer` is a member: the reference the closure holds keeps it alive.
  *timer = internal::RunAfterOnWorkSerializer(event_engine_.get(), delay, work_serializer_,
                                    [self = RefAsSubclass(), timer, retry]() {
                                      timer->reset();
                                      (self.get()->*retry)();
                                    });
}

void EtcdResolver::OnSnapshotLocked(const etcd::PrefixWatch::Snapshot& snapshot) {
  if (shutdown_) return;
  snapshot_ = snapshot;
  // A new listing (after a reconnection) is a chance for a name that did not
  // resolve; an event under the prefix is not (it would look every failed
  // name up again for each one).
  const int lists = watch_ != nullptr ? watch_->lists() : 0;
  const bool relisted = lists != lists_seen_;
  lists_seen_ = lists;
  ReconcileLocked(/*retry_lookups=*/relisted);
}

void EtcdResolver::ReconcileLocked(bool retry_lookups) {
  // Deleted keys go, with whatever they held.
  for (auto it = good_.begin(); it != good_.end();) {
    it = snapshot_.count(it->first) ? std::next(it) : good_.erase(it);
  }
  for (auto it = logged_bad_.begin(); it != logged_bad_.end();) {
    auto now = snapshot_.find(it->first);
    // Gone, or back to a value that is not the one logged: log anew next time.
    it = now != snapshot_.end() && now->second == it->second ? std::next(it)
                                                               : logged_bad_.erase(it);
  }
  for (auto it = failed_.begin(); it != failed_.end();) {
    auto now = snapshot_.find(it->first);
    it = now != snapshot_.end() && now->second == it->second.value ? std::next(it)
                                                                     : failed_.erase(it);
  }
  std::vector<Lookup> lookups;
  for (const auto& [key, value] : snapshot_) {
    auto known = good_.find(key);
    if (known != good_.end() && known->second.value == value) continue;  // resolved already
    auto failed = failed_.find(key);
    if (failed != failed_.end() && !(retry_lookups && failed->second.lookup)) continue;
    auto pending = looking_up_.find(key);
    if (pending != looking_up_.end() && pending->second == value) continue;
    auto spec = ParseEndpointObject(value);
    if (!spec.ok()) {
      MarkFailedLocked(key, value, spec.status(), /*lookup=*/false);
      continue;
    }
    if (HasHostNames({*spec})) {
      // Names are looked up off the WorkSerializer; until then the key
      // keeps its last good value, if it has one.
      looking_up_[key] = value;
      lookups.push_back({key, value, *std::move(spec)});
      continue;
    }
    auto resolved = ToServerAddresses({*spec});  // IP literals: nothing blocks
    if (!resolved.ok()) {
      MarkFailedLocked(key, value, resolved.status(), /*lookup=*/false);
      continue;
    }
    good_.insert_or_assign(key, Good{value, *std::move(resolved), spec->address});
    logged_bad_.erase(key);
    failed_.erase(key);
  }
  if (!lookups.empty()) StartLookupsLocked(std::move(lookups));
  ReportLocked();
}

void EtcdResolver::RetryFailedLookupsLocked() {
  if (shutdown_) return;
  last_retry_ = std::chrono::steady_clock::now();
  std::vector<Lookup> lookups;
  for (const auto& [key, failed] : failed_) {
    if (!failed.lookup || looking_up_.count(key) != 0) continue;
    auto spec = ParseEndpointObject(failed.value);
    if (!spec.ok()) continue;
    looking_up_[key] = failed.value;
    lookups.push_back({key, failed.value, *std::move(spec)});
  }
  if (!lookups.empty()) StartLookupsLocked(std::move(lookups));
}

void EtcdResolver::StartLookupsLocked(std::vector<Lookup> lookups) {
  internal::RunDetached([self = RefAsSubclass(), lookups = std::move(lookups)]() mutable {
    for (Lookup& lookup : lookups) lookup.addresses = ToServerAddresses({lookup.spec});
    auto done = std::make_shared<std::vector<Lookup>>(std::move(lookups));
    EtcdResolver* resolver = self.get();
    internal::RunOnWorkSerializer(resolver->work_serializer_, [self, done]() {
      self->OnLookupsDoneLocked(std::move(*done));
    });
  });
}

void EtcdResolver::OnLookupsDoneLocked(std::vector<Lookup> lookups) {
  if (shutdown_) return;
  for (Lookup& lookup : lookups) {
    auto pending = looking_up_.find(lookup.key);
    if (pending != looking_up_.end() && pending->second == lookup.value) looking_up_.erase(pending);
    auto now = snapshot_.find(lookup.key);
    if (now == snapshot_.end() || now->second != lookup.value) continue;  // changed meanwhile
    if (!lookup.addresses.ok()) {
      MarkFailedLocked(lookup.key, lookup.value, lookup.addresses.status(), /*lookup=*/true);
      continue;
    }
    good_.insert_or_assign(lookup.key,
                           Good{lookup.value, *std::move(lookup.addresses), lookup.spec.address});
    logged_bad_.erase(lookup.key);
    failed_.erase(lookup.key);
  }
  bool any_failed = false;
  for (const auto& [key, failed] : failed_) any_failed = any_failed || failed.lookup;
  if (any_failed) {
    ScheduleLookupRetryLocked();
  } else {
    lookup_backoff_ = std::chrono::milliseconds(1000);
  }
  ReportLocked();
}

void EtcdResolver::ScheduleLookupRetryLocked() {
  ArmRetryLocked(&lookup_timer_, &lookup_backoff_, std::chrono::milliseconds(120000),
                 &EtcdResolver::RetryFailedLookupsLocked);
}

void EtcdResolver::MarkFailedLocked(const std::string& key, const std::string& value,
                                    absl::Status problem, bool lookup) {
  auto logged = logged_bad_.find(key);
  if (logged == logged_bad_.end() || logged->second != value) {
    gpr_log(GPR_ERROR, "lbkit-etcd: skipping key %s: %s%s", key.c_str(),
            std::string(problem.message()).c_str(),
            good_.count(key) != 0 ? " (keeping its last good value)" : "");
    logged_bad_[key] = value;
  }
  failed_[key] = Failed{value, std::move(problem), lookup};
}

void EtcdResolver::ReportLocked() {
  grpc_core::ServerAddressList addresses;
  std::map<std::string, std::string> seen;  // address as written -> key
  std::string first_problem;
  for (const auto& [key, value] : snapshot_) {
    auto failed = failed_.find(key);
    if (failed != failed_.end() && first_problem.empty()) {
      first_problem = absl::StrCat(key, ": ", failed->second.problem.message());
    }
    auto known = good_.find(key);
    if (known == good_.end()) continue;
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
  if (addresses.empty() && !have_result_) {
    // Names still being looked up: wait for them rather than report nothing.
    if (!looking_up_.empty()) return;
    if (!first_problem.empty()) {
      // Keys exist but none is usable: the reason beats "empty address list".
      ReportErrorLocked(absl::StrCat("no usable endpoint under ", target_.prefix, "; ",
                                     first_problem));
      return;
    }
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
  for (auto* timer : {&retry_timer_, &lookup_timer_}) {
    if (timer->has_value()) {
      event_engine_->Cancel(**timer);
      timer->reset();
    }
  }
  // A lookup thread blocked in a slow name server must not keep the
  // channel alive through the handler.
  result_handler_.reset();
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
