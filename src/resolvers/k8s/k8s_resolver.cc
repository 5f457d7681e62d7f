#include "resolvers/k8s/k8s_resolver.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ratio>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/detached_work.h"
#include "common/work_serializer_hop.h"
#include "grpc_internal/abi_guard.h"
#include "lbkit/istio.h"
#include "policies/locality/locality.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/common/endpoint_spec.h"
#include "resolvers/k8s/istio_rules.h"
#include "resolvers/k8s/kube_objects.h"
#include "resolvers/k8s/service_watch.h"
#include "resolvers/register.h"
#include "absl/types/optional.h"
#include "src/core/lib/event_engine/default_event_engine.h"
#include "src/core/lib/gprpp/work_serializer.h"
#include "src/core/lib/iomgr/exec_ctx.h"
#include "src/core/lib/resolver/resolver.h"
#include "src/core/lib/resolver/resolver_factory.h"
#include "src/core/lib/resolver/resolver_registry.h"
#include "src/core/lib/service_config/service_config_impl.h"
#include "stats/stats.h"

namespace lbkit::resolvers::k8s {

namespace {

class K8sResolver;

// What each ?istio=true channel made of the cluster's rules, for
// DumpState()'s "k8s"."istio".
struct IstioStatus {
  std::string target;
  std::vector<std::string> rules;  // "DestinationRule ns/name" ...
  bool applied = false;            // a translated config is the channel's
  std::string error;               // the newest translation error ("" none)
  std::vector<std::string> warnings;
  std::string api_error;           // reading the rules failed
};
absl::Mutex g_istio_mu(absl::kConstInit);
std::map<const void*, IstioStatus>& IstioStatuses() {
  static auto* statuses = new std::map<const void*, IstioStatus>();
  return *statuses;
}
std::atomic<uint64_t> g_istio_errors{0};

// What the watch's listener shares with the resolver. A burst of changes
// posts one hop: the resolver reads the newest state when it runs.
struct Link {
  absl::Mutex mu;
  grpc_core::RefCountedPtr<K8sResolver> resolver ABSL_GUARDED_BY(mu);
  std::shared_ptr<grpc_core::WorkSerializer> serializer;
  std::atomic<bool> pending{false};

  void Notify();
};

class K8sResolver : public grpc_core::Resolver {
 public:
  explicit K8sResolver(grpc_core::ResolverArgs args)
      : uri_(args.uri),
        channel_args_(std::move(args.args)),
        work_serializer_(std::move(args.work_serializer)),
        result_handler_(std::move(args.result_handler)) {}

  grpc_core::RefCountedPtr<K8sResolver> RefAsSubclass() {
    Ref().release();
    return grpc_core::RefCountedPtr<K8sResolver>(this);
  }

  void StartLocked() override {
    auto target = ParseK8sTarget(uri_.authority(), uri_.path(), uri_.query_parameter_map());
    if (!target.ok()) {
      ReportErrorLocked(absl::StrCat(target.status().message(), " (target ", uri_.ToString(), ")"));
      return;
    }
    target_ = *std::move(target);
    StartWatchLocked();
  }

  // The watch keeps the set current by itself; what a request can mend is
  // a watch that could not start (no credentials yet).
  void RequestReresolutionLocked() override {
    if (watch_ != nullptr || starting_ || shutdown_ || target_.service.empty()) return;
    if (retry_timer_.has_value()) return;  // a retry is on its way
    StartWatchLocked();
  }

  void OnChangeLocked() {
    if (shutdown_ || watch_ == nullptr) return;
    link_->pending.store(false);
    ServiceWatch::View view = watch_->Read();
    if (!view.ready) {
      // Before the first complete list, calls fail with the reason.
      if (!view.error.ok() && !have_result_) ReportErrorLocked(view.error.message());
      return;
    }
    auto selected = SelectEndpoints(*view.state, target_);
    if (!selected.ok()) {
      LogOnceLocked(selected.status().message());
      if (!have_result_) {
        ReportErrorLocked(selected.status().message());
      } else if (!last_.empty()) {
        // The Service went away or lost the port: that is the cluster's
        // state, not an API error, so its old pods' addresses (which other
        // pods may get) are dropped.
        last_.clear();
        Result result;
        result.addresses = grpc_core::ServerAddressList();
        result.args = channel_args_;
        result.service_config = service_config_;
        result_handler_->ReportResult(std::move(result));
      }
      return;
    }
    if (selected->endpoints.empty() && !have_result_ && !view.error.ok()) {
      ReportErrorLocked(view.error.message());
      return;
    }
    auto addresses = ToServerAddresses(selected->endpoints);  // IP literals only
    if (!addresses.ok()) {
      LogOnceLocked(addresses.status().message());
      return;
    }
    if (istio_ != nullptr) {
      IstioRulesWatch::View rules = istio_->Read();
      // The first list of rules is awaited (a canary rule must not be
      // missed by the first calls), unless reading them fails: then the
      // application's own config serves meanwhile.
      if (!rules.ready && rules.error.ok()) return;
      UpdateIstioConfigLocked(rules, selected->service_port);
    }
    const std::string locality = view.client_locality.has_value() && !view.client_locality->empty()
                                     ? LocalityText(*view.client_locality)
                                     : "";
    if (have_result_ && !config_changed_ && selected->endpoints.size() == last_.size() &&
        locality == last_locality_ &&
        std::equal(last_.begin(), last_.end(), selected->endpoints.begin(),
                   [](const EndpointSpec& a, const EndpointSpec& b) {
                     return a.address == b.address && a.attributes == b.attributes;
                   })) {
      return;  // a change this port's endpoints do not see
    }
    last_ = selected->endpoints;
    last_locality_ = locality;
    have_result_ = true;
    last_logged_.clear();
    config_changed_ = false;
    Result result;
    result.addresses = *std::move(addresses);
    result.args = locality.empty()
                      ? channel_args_
                      : channel_args_.Set(policies::kClientLocalityChannelArg, locality);
    // No rule: no config here, so the channel keeps the application's own
    // (gRPC's rule for a resolver that returns none).
    result.service_config = service_config_;
    for (const auto& [name, value] : istio_channel_args_) result.args = result.args.Set(name, value);
    result_handler_->ReportResult(std::move(result));
  }

 private:
  void StartWatchLocked() {
    starting_ = true;
    // Reading credentials is file I/O: off the WorkSerializer.
    internal::RunDetached([self = RefAsSubclass(), ns = target_.namespace_name, service = target_.service]() {
      auto watch = std::make_shared<absl::StatusOr<std::shared_ptr<ServiceWatch>>>(
          ServiceWatch::Get(ns, service));
      K8sResolver* resolver = self.get();
      internal::RunOnWorkSerializer(resolver->work_serializer_,
                          [self, watch]() { self->OnWatchLocked(std::move(*watch)); });
    });
  }

  void OnWatchLocked(absl::StatusOr<std::shared_ptr<ServiceWatch>> watch) {
    starting_ = false;
    if (shutdown_) return;
    if (!watch.ok()) {
      // No credentials yet (a token not mounted yet, a kubeconfig being
      // written): say why, and try again, 1 s doubling to 30 s. Nothing
      // else would ask: a channel without addresses has no subchannel to
      // request re-resolution.
      ReportErrorLocked(absl::StrCat(watch.status().message(), "; retrying in ",
                                     start_backoff_.count(), " ms"));
      if (event_engine_ == nullptr) {
        event_engine_ = grpc_event_engine::experimental::GetDefaultEventEngine();
      }
      const auto delay = start_backoff_;
      start_backoff_ = std::min(start_backoff_ * 2, std::chrono::milliseconds(30000));
      retry_timer_ = internal::RunAfterOnWorkSerializer(event_engine_.get(), delay, work_serializer_,
                                              [self = RefAsSubclass()]() {
                                                self->retry_timer_.reset();
                                                if (!self->shutdown_) self->StartWatchLocked();
                                              });
      return;
    }
    start_backoff_ = std::chrono::milliseconds(1000);
    watch_ = *std::move(watch);
    target_.namespace_name = watch_->namespace_name();
    link_ = std::make_shared<Link>();
    link_->serializer = work_serializer_;
    {
      absl::MutexLock lock(&link_->mu);
      link_->resolver = RefAsSubclass();
    }
    listener_ = watch_->AddListener([link = link_]() { link->Notify(); });
    if (target_.istio) {
      istio_ = IstioRulesWatch::Get(watch_->client());
      istio_listener_ = istio_->AddListener([link = link_]() { link->Notify(); });
      client_namespace_ = watch_->client()->credentials().default_namespace;
      absl::MutexLock lock(&g_istio_mu);
      IstioStatuses()[this].target = uri_.ToString();
    }
    OnChangeLocked();  // the watch may be ready already (another channel's)
  }

  void ShutdownLocked() override {
    shutdown_ = true;
    if (retry_timer_.has_value()) {
      event_engine_->Cancel(*retry_timer_);
      retry_timer_.reset();
    }
    result_handler_.reset();
    if (watch_ != nullptr) watch_->RemoveListener(listener_);
    watch_.reset();
    if (istio_ != nullptr) {
      istio_->RemoveListener(istio_listener_);
      istio_.reset();
      absl::MutexLock lock(&g_istio_mu);
      IstioStatuses().erase(this);
    }
    if (link_ == nullptr) return;
    grpc_core::RefCountedPtr<K8sResolver> self;  // released after the lock
    {
      absl::MutexLock lock(&link_->mu);
      self = std::move(link_->resolver);
    }
    link_.reset();
  }

  void ReportErrorLocked(absl::string_view message) {
    if (result_handler_ == nullptr) return;
    Result result;
    result.addresses = absl::UnavailableError(absl::StrCat(kK8sScheme, ": ", message));
    result.args = channel_args_;
    result_handler_->ReportResult(std::move(result));
  }

  void LogOnceLocked(absl::string_view message) {
    if (message == last_logged_) return;
    last_logged_ = std::string(message);
    gpr_log(GPR_ERROR, "lbkit-k8s: %s (%s)%s", last_logged_.c_str(), uri_.ToString().c_str(),
            have_result_ ? "; keeping the last endpoint set" : "");
  }

  const grpc_core::URI uri_;
  const grpc_core::ChannelArgs channel_args_;
  std::shared_ptr<grpc_core::WorkSerializer> work_serializer_;
  std::unique_ptr<ResultHandler> result_handler_;
  K8sTarget target_;
  std::shared_ptr<ServiceWatch> watch_;
  std::shared_ptr<Link> link_;
  uint64_t listener_ = 0;
  bool shutdown_ = false;
  bool starting_ = false;
  bool have_result_ = false;
  std::chrono::milliseconds start_backoff_{1000};
  absl::optional<grpc_event_engine::experimental::EventEngine::TaskHandle> retry_timer_;
  std::shared_ptr<grpc_event_engine::experimental::EventEngine> event_engine_;
  std::vector<EndpointSpec> last_;
  std::string last_locality_;
  std::string last_logged_;

  // ?istio=true: the rules' watch and what the last translation gave.
  void UpdateIstioConfigLocked(const IstioRulesWatch::View& rules, int service_port);
  std::shared_ptr<IstioRulesWatch> istio_;
  uint64_t istio_listener_ = 0;
  std::string client_namespace_;
  std::string rules_key_;  // what was translated last (uids and versions)
  int rules_port_ = 0;
  bool config_changed_ = false;
  grpc_core::RefCountedPtr<grpc_core::ServiceConfig> service_config_;
  std::map<std::string, int> istio_channel_args_;
};

void K8sResolver::UpdateIstioConfigLocked(const IstioRulesWatch::View& rules, int service_port) {
  const char* root = std::getenv(kIstioRootNamespaceVariable);
  RuleQuery query;
  query.client_namespace = client_namespace_;
  query.service_namespace = target_.namespace_name;
  query.service = target_.service;
  if (root != nullptr && *root != '\0') query.root_namespace = root;
  static const std::vector<nlohmann::json> kNone;
  SelectedRules selected =
      SelectIstioRules(rules.destination_rules != nullptr ? *rules.destination_rules : kNone,
                       rules.virtual_services != nullptr ? *rules.virtual_services : kNone, query);
  IstioStatus status;
  status.target = uri_.ToString();
  status.rules = selected.names;
  status.api_error = std::string(rules.error.message());
  if (selected.key == rules_key_ && service_port == rules_port_) {
    absl::MutexLock lock(&g_istio_mu);
    IstioStatuses()[this].api_error = status.api_error;
    return;
  }
  rules_key_ = selected.key;
  rules_port_ = service_port;
  if (selected.empty()) {
    config_changed_ = service_config_ != nullptr || !istio_channel_args_.empty();
    service_config_.reset();
    istio_channel_args_.clear();
  } else {
    IstioOptions options;
    options.host = absl::StrCat(target_.service, ".", target_.namespace_name, ".svc.cluster.local");
    options.port = service_port;
    auto translation = TranslateIstio(RulesDocument(selected), options);
    absl::StatusOr<grpc_core::RefCountedPtr<grpc_core::ServiceConfig>> config =
        translation.ok() ? grpc_core::ServiceConfigImpl::Create(channel_args_,
                                                                 translation->service_config)
                         : translation.status();
    if (!config.ok()) {
      // The last good config stays; the next edit of a rule tries again.
      status.error = absl::StrCat(absl::StrJoin(selected.names, ", "), ": ",
                                  config.status().message());
      ++g_istio_errors;
      gpr_log(GPR_ERROR, "lbkit-k8s: %s: the Istio rules do not translate (%s); keeping the %s",
              uri_.ToString().c_str(), status.error.c_str(),
              service_config_ != nullptr ? "last good config" : "application's config");
    } else {
      service_config_ = *std::move(config);
      istio_channel_args_ = translation->channel_args;
      status.warnings = translation->warnings;
      config_changed_ = true;
    }
  }
  status.applied = service_config_ != nullptr;
  absl::MutexLock lock(&g_istio_mu);
  IstioStatuses()[this] = std::move(status);
}

void Link::Notify() {
  if (pending.exchange(true)) return;  // a hop is on its way; it reads the newest
  // This runs on a watch thread: the resolver reference it takes is
  // dropped inside an ExecCtx, as gRPC requires of threads it does not own.
  grpc_core::ExecCtx exec_ctx;
  grpc_core::RefCountedPtr<K8sResolver> target;
  {
    absl::MutexLock lock(&mu);
    target = resolver;
  }
  if (target == nullptr) return;
  internal::RunOnWorkSerializer(serializer, [target]() { target->OnChangeLocked(); });
}

class K8sResolverFactory : public grpc_core::ResolverFactory {
 public:
  absl::string_view scheme() const override { return kK8sScheme; }
  // A bad target is reported through the resolver: RPCs fail with the
  // reason instead of the channel failing to be created.
  bool IsValidUri(const grpc_core::URI& /*uri*/) const override { return true; }
  grpc_core::OrphanablePtr<grpc_core::Resolver> CreateResolver(
      grpc_core::ResolverArgs args) const override {
    return grpc_core::MakeOrphanable<K8sResolver>(std::move(args));
  }
  // "greeter.default:grpc" -> "greeter.default"; a numeric port stays.
  std::string GetDefaultAuthority(const grpc_core::URI& uri) const override {
    std::string path(absl::StripPrefix(uri.path(), "/"));
    auto target = ParseK8sTarget("", path, {});
    if (target.ok() && !target->port_name.empty()) path = path.substr(0, path.rfind(':'));
    return path;
  }
};

std::string JsonList(const std::map<std::string, int>& counts) {
  std::vector<std::string> parts;
  for (const auto& [name, count] : counts) {
    parts.push_back(absl::StrCat(stats::JsonString(name), ":", count));
  }
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

}  // namespace

std::string WatchesJson() {
  std::vector<std::string> watches;
  for (const ServiceWatchInfo& info : ServiceWatch::All()) {
    std::vector<std::string> resources;
    for (const ListWatchStats& r : info.resources) {
      resources.push_back(absl::StrCat(
          "{\"resource\":", stats::JsonString(r.resource), ",\"synced\":", r.synced ? "true" : "false",
          ",\"resource_version\":", stats::JsonString(r.resource_version), ",\"lists\":", r.lists,
          ",\"relists\":", r.relists, ",\"watches\":", r.watches, ",\"events\":", r.events,
          ",\"bookmarks\":", r.bookmarks, ",\"errors\":", r.errors, ",\"last_error\":",
          r.last_error.empty() ? "null" : stats::JsonString(r.last_error), "}"));
    }
    watches.push_back(absl::StrCat(
        "{\"namespace\":", stats::JsonString(info.namespace_name),
        ",\"service\":", stats::JsonString(info.service),
        ",\"api_server\":", stats::JsonString(info.api_server),
        ",\"credentials\":", stats::JsonString(info.credentials),
        ",\"channels\":", info.listeners, ",\"ready\":", info.ready ? "true" : "false",
        ",\"error\":", info.error.empty() ? "null" : stats::JsonString(info.error),
        ",\"nodes_readable\":", info.nodes_readable ? "true" : "false",
        ",\"client_locality\":", stats::JsonString(info.client_locality),
        ",\"endpoints_per_slice\":", JsonList(info.endpoints_per_slice),
        ",\"watches\":[", absl::StrJoin(resources, ","), "]}"));
  }
  return absl::StrCat("[", absl::StrJoin(watches, ","), "]");
}

std::string IstioJson() {
  std::vector<std::string> channels;
  absl::MutexLock lock(&g_istio_mu);
  for (const auto& [key, status] : IstioStatuses()) {
    std::vector<std::string> rules, warnings;
    for (const auto& r : status.rules) rules.push_back(stats::JsonString(r));
    for (const auto& w : status.warnings) warnings.push_back(stats::JsonString(w));
    channels.push_back(absl::StrCat(
        "{\"target\":", stats::JsonString(status.target), ",\"rules\":[", absl::StrJoin(rules, ","),
        "],\"applied\":", status.applied ? "true" : "false", ",\"error\":",
        status.error.empty() ? "null" : stats::JsonString(status.error), ",\"api_error\":",
        status.api_error.empty() ? "null" : stats::JsonString(status.api_error),
        ",\"warnings\":[", absl::StrJoin(warnings, ","), "]}"));
  }
  return absl::StrCat("[", absl::StrJoin(channels, ","), "]");
}

std::string WatchesPrometheus() {
  const std::vector<ServiceWatchInfo> all = ServiceWatch::All();
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help,
                    const std::function<uint64_t(const ListWatchStats&)>& value) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    for (const ServiceWatchInfo& info : all) {
      for (const ListWatchStats& r : info.resources) {
        absl::StrAppend(&out, name, "{namespace=\"", info.namespace_name, "\",service=\"",
                        info.service, "\",resource=\"", r.resource, "\"} ", value(r), "\n");
      }
    }
  };
  family("lbkit_k8s_lists_total", "counter", "Complete lists of a watched resource.",
         [](const ListWatchStats& r) { return r.lists; });
  family("lbkit_k8s_relists_total", "counter", "Lists after the first (410 Gone, errors).",
         [](const ListWatchStats& r) { return r.relists; });
  family("lbkit_k8s_watches_total", "counter", "Watch requests started.",
         [](const ListWatchStats& r) { return r.watches; });
  family("lbkit_k8s_events_total", "counter", "Watch events applied.",
         [](const ListWatchStats& r) { return r.events; });
  family("lbkit_k8s_errors_total", "counter", "API errors (the last good state is kept).",
         [](const ListWatchStats& r) { return r.errors; });
  family("lbkit_k8s_synced", "gauge", "1 once the resource has been listed.",
         [](const ListWatchStats& r) { return r.synced ? 1 : 0; });
  absl::StrAppend(&out, "# HELP lbkit_k8s_istio_translation_errors_total Istio rules from the "
                  "cluster that did not translate (the last good config was kept).\n",
                  "# TYPE lbkit_k8s_istio_translation_errors_total counter\n",
                  "lbkit_k8s_istio_translation_errors_total ", g_istio_errors.load(), "\n");
  absl::StrAppend(&out, "# HELP lbkit_k8s_slice_endpoints Addresses each EndpointSlice lists.\n",
                  "# TYPE lbkit_k8s_slice_endpoints gauge\n");
  for (const ServiceWatchInfo& info : all) {
    for (const auto& [slice, count] : info.endpoints_per_slice) {
      absl::StrAppend(&out, "lbkit_k8s_slice_endpoints{namespace=\"", info.namespace_name,
                      "\",service=\"", info.service, "\",slice=\"", slice, "\"} ", count, "\n");
    }
  }
  return out;
}

}  // namespace lbkit::resolvers::k8s

namespace lbkit::resolvers {

void RegisterK8sResolver(grpc_core::CoreConfiguration::Builder* builder) {
  builder->resolver_registry()->RegisterResolverFactory(
      std::make_unique<k8s::K8sResolverFactory>());
  stats::RegisterSection("k8s", k8s::WatchesJson, k8s::WatchesPrometheus);
  stats::RegisterSection("istio", k8s::IstioJson, []() { return std::string(); });
}

}  // namespace lbkit::resolvers
