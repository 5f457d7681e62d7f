#include "resolvers/k8s/service_watch.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <tuple>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "resolvers/k8s/kube_config.h"
#include <grpc/support/log.h>

namespace lbkit::resolvers::k8s {

namespace {

absl::Mutex g_registry_mu;
// By API server, namespace and Service.
using RegistryKey = std::tuple<std::string, std::string, std::string>;
std::map<RegistryKey, std::weak_ptr<ServiceWatch>>& Registry() {
  static auto* registry = new std::map<RegistryKey, std::weak_ptr<ServiceWatch>>();
  return *registry;
}

std::string SelectorText(const std::map<std::string, std::string>& selector) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : selector) parts.push_back(absl::StrCat(key, "=", value));
  return absl::StrJoin(parts, ",");
}

}  // namespace

absl::StatusOr<std::shared_ptr<ServiceWatch>> ServiceWatch::Get(const std::string& namespace_name,
                                                               const std::string& service) {
  auto credentials = LoadKubeCredentials();
  if (!credentials.ok()) return credentials.status();
  const std::string ns = namespace_name.empty() ? credentials->default_namespace : namespace_name;
  absl::MutexLock lock(&g_registry_mu);
  std::weak_ptr<ServiceWatch>& slot = Registry()[{credentials->server, ns, service}];
  if (auto live = slot.lock()) return live;
  auto client = std::make_shared<const KubeClient>(*std::move(credentials));
  std::shared_ptr<ServiceWatch> watch(new ServiceWatch(std::move(client), ns, service));
  slot = watch;
  watch->Start();
  return watch;
}

std::vector<ServiceWatchInfo> ServiceWatch::All() {
  std::vector<std::shared_ptr<ServiceWatch>> live;
  {
    absl::MutexLock lock(&g_registry_mu);
    for (auto it = Registry().begin(); it != Registry().end();) {
      if (auto watch = it->second.lock()) {
        live.push_back(std::move(watch));
        ++it;
      } else {
        it = Registry().erase(it);
      }
    }
  }
  std::vector<ServiceWatchInfo> out;
  for (const auto& watch : live) out.push_back(watch->Info());
  return out;
}

ServiceWatch::ServiceWatch(std::shared_ptr<const KubeClient> client, std::string namespace_name,
                           std::string service)
    : client_(std::move(client)),
      namespace_name_(std::move(namespace_name)),
      service_(std::move(service)) {}

ServiceWatch::~ServiceWatch() {
  // The threads hold no reference to us: stopping is telling them.
  node_cancel_.Cancel();
  if (services_lw_ != nullptr) services_lw_->Stop();
  if (slices_lw_ != nullptr) slices_lw_->Stop();
  absl::MutexLock lock(&mu_);
  if (pods_lw_ != nullptr) pods_lw_->Stop();
}

ListWatchCallbacks ServiceWatch::Callbacks(
    const std::string& resource,
    std::function<void(ServiceWatch*, std::vector<nlohmann::json>)> on_list,
    std::function<void(ServiceWatch*, const nlohmann::json&, bool)> on_event) {
  std::weak_ptr<ServiceWatch> weak = weak_from_this();
  ListWatchCallbacks callbacks;
  callbacks.on_list = [weak, on_list](std::vector<nlohmann::json> items) {
    if (auto self = weak.lock()) on_list(self.get(), std::move(items));
  };
  callbacks.on_event = [weak, on_event](const nlohmann::json& object, bool deleted) {
    if (auto self = weak.lock()) on_event(self.get(), object, deleted);
  };
  callbacks.on_error = [weak, resource](const absl::Status& error) {
    if (auto self = weak.lock()) self->OnError(resource, error);
  };
  callbacks.on_recovered = [weak, resource]() {
    if (auto self = weak.lock()) {
      {
        absl::MutexLock lock(&self->mu_);
        self->ClearErrorLocked(resource);
      }
      self->Notify();
    }
  };
  return callbacks;
}

void ServiceWatch::Start() {
  const std::string ns_path = absl::StrCat("/namespaces/", namespace_name_);
  services_lw_ = ListWatch::Start(
      client_,
      {absl::StrCat("/api/v1", ns_path, "/services"), "",
       absl::StrCat("metadata.name=", service_), "services"},
      Callbacks("services", &ServiceWatch::OnServices, &ServiceWatch::OnServiceEvent));
  slices_lw_ = ListWatch::Start(
      client_,
      {absl::StrCat("/apis/discovery.k8s.io/v1", ns_path, "/endpointslices"),
       absl::StrCat(kServiceNameLabel, "=", service_), "", "endpointslices"},
      Callbacks("endpointslices", &ServiceWatch::OnSlices, &ServiceWatch::OnSliceEvent));
}

void ServiceWatch::OnServices(std::vector<nlohmann::json> items) {
  {
    absl::MutexLock lock(&mu_);
    ClearErrorLocked("services");
    service_listed_ = true;
    std::optional<ServiceInfo> found;
    for (const auto& item : items) {
      if (ObjectName(item) != service_) continue;
      auto parsed = ParseService(item);
      if (parsed.ok()) {
        found = *std::move(parsed);
      } else {
        gpr_log(GPR_ERROR, "lbkit-k8s: %s; keeping the last good Service",
                std::string(parsed.status().message()).c_str());
        found = state_.service;  // keep the last good one
      }
    }
    UpdateServiceLocked(std::move(found));
  }
  Notify();
}

void ServiceWatch::OnServiceEvent(const nlohmann::json& object, bool deleted) {
  if (ObjectName(object) != service_) return;
  {
    absl::MutexLock lock(&mu_);
    ClearErrorLocked("services");
    if (deleted) {
      UpdateServiceLocked(std::nullopt);
    } else if (auto parsed = ParseService(object); parsed.ok()) {
      UpdateServiceLocked(*std::move(parsed));
    } else {
      gpr_log(GPR_ERROR, "lbkit-k8s: %s; keeping the last good Service",
              std::string(parsed.status().message()).c_str());
    }
  }
  Notify();
}

void ServiceWatch::UpdateServiceLocked(std::optional<ServiceInfo> service) {
  service_error_ = service.has_value()
                       ? absl::OkStatus()
                       : absl::NotFoundError(absl::StrCat("Service ", namespace_name_, "/",
                                                          service_, " not found"));
  // The pods to read labels from are the Service's selector's: a new
  // selector is a new pod watch.
  const std::string selector = service.has_value() ? SelectorText(service->selector) : "";
  state_.service = std::move(service);
  snapshot_.reset();
  if (selector.empty()) pods_listed_ = true;  // no selector: no pods to read labels from
  if (selector == pod_selector_ && (pods_lw_ != nullptr || selector.empty())) return;
  pod_selector_ = selector;
  if (pods_lw_ != nullptr) pods_lw_->Stop();
  pods_lw_.reset();
  state_.pods.clear();
  const uint64_t generation = ++pod_generation_;
  pods_listed_ = selector.empty();  // no selector: endpoints carry no pod labels
  if (selector.empty()) return;
  pods_lw_ = ListWatch::Start(
      client_,
      {absl::StrCat("/api/v1/namespaces/", namespace_name_, "/pods"), selector, "", "pods"},
      Callbacks(
          "pods",
          [generation](ServiceWatch* self, std::vector<nlohmann::json> items) {
            self->OnPods(generation, std::move(items));
          },
          [generation](ServiceWatch* self, const nlohmann::json& object, bool deleted) {
            self->OnPodEvent(generation, object, deleted);
          }));
}

void ServiceWatch::OnSlices(std::vector<nlohmann::json> items) {
  {
    absl::MutexLock lock(&mu_);
    ClearErrorLocked("endpointslices");
    std::map<std::string, SliceInfo> slices;
    for (const auto& item : items) {
      auto parsed = ParseEndpointSlice(item);
      const std::string name = ObjectName(item);
      if (parsed.ok()) {
        slices[name] = *std::move(parsed);
      } else if (auto old = state_.slices.find(name); old != state_.slices.end()) {
        slices[name] = old->second;  // a bad version never removes endpoints
      }
      if (!parsed.ok() && bad_objects_logged_.insert(ObjectResourceVersion(item)).second) {
        gpr_log(GPR_ERROR, "lbkit-k8s: skipping %s", std::string(parsed.status().message()).c_str());
      }
    }
    state_.slices = std::move(slices);
    slices_listed_ = true;
    snapshot_.reset();
    // A (re-)list is the chance for nodes whose lookup failed.
    nodes_failed_.clear();
    if (!client_locality_.has_value()) client_node_fetched_ = false;
  }
  FetchNodes();
  Notify();
}

void ServiceWatch::OnSliceEvent(const nlohmann::json& object, bool deleted) {
  {
    absl::MutexLock lock(&mu_);
    ClearErrorLocked("endpointslices");
    const std::string name = ObjectName(object);
    if (deleted) {
      state_.slices.erase(name);
    } else if (auto parsed = ParseEndpointSlice(object); parsed.ok()) {
      state_.slices[name] = *std::move(parsed);
    } else {
      if (bad_objects_logged_.insert(ObjectResourceVersion(object)).second) {
        gpr_log(GPR_ERROR, "lbkit-k8s: skipping %s (keeping its last good version)",
                std::string(parsed.status().message()).c_str());
      }
      return;
    }
    snapshot_.reset();
  }
  FetchNodes();
  Notify();
}

void ServiceWatch::OnPods(uint64_t generation, std::vector<nlohmann::json> items) {
  {
    absl::MutexLock lock(&mu_);
    if (generation != pod_generation_) return;  // an old selector's watch
    ClearErrorLocked("pods");
    std::map<std::string, Labels> pods;
    for (const auto& item : items) {
      const std::string name = ObjectName(item);
      if (auto labels = ParsePodLabels(item); labels.ok()) {
        pods[name] = *std::move(labels);
      } else if (auto old = state_.pods.find(name); old != state_.pods.end()) {
        pods[name] = old->second;
      }
    }
    state_.pods = std::move(pods);
    pods_listed_ = true;
    snapshot_.reset();
  }
  Notify();
}

void ServiceWatch::OnPodEvent(uint64_t generation, const nlohmann::json& object, bool deleted) {
  {
    absl::MutexLock lock(&mu_);
    if (generation != pod_generation_) return;
    ClearErrorLocked("pods");
    const std::string name = ObjectName(object);
    if (deleted) {
      state_.pods.erase(name);
    } else if (auto labels = ParsePodLabels(object); labels.ok()) {
      if (auto old = state_.pods.find(name); old != state_.pods.end() && old->second == *labels) {
        return;  // a status change: nothing we use
      }
      state_.pods[name] = *std::move(labels);
    } else {
      return;
    }
    snapshot_.reset();
  }
  Notify();
}

absl::Status ServiceWatch::ErrorLocked() const {
  if (!service_error_.ok()) return service_error_;
  for (const auto& [resource, error] : api_errors_) return error;
  return absl::OkStatus();
}

void ServiceWatch::OnError(const std::string& resource, const absl::Status& error) {
  {
    absl::MutexLock lock(&mu_);
    absl::Status& slot = api_errors_[resource];
    if (error.message() == slot.message()) return;
    slot = error;
  }
  gpr_log(GPR_INFO, "lbkit-k8s: %s/%s: %s", namespace_name_.c_str(), service_.c_str(),
          std::string(error.message()).c_str());
  Notify();
}

void ServiceWatch::FetchNodes() {
  std::set<std::string> wanted;
  bool fetch_client = false;
  std::string client_node;
  {
    absl::MutexLock lock(&mu_);
    if (!nodes_readable_) return;
    for (const auto& [name, slice] : state_.slices) {
      for (const SliceEndpoint& endpoint : slice.endpoints) {
        if (!endpoint.node_name.empty() && state_.nodes.count(endpoint.node_name) == 0 &&
            nodes_failed_.count(endpoint.node_name) == 0) {
          wanted.insert(endpoint.node_name);
        }
      }
    }
    if (!client_node_fetched_) {
      client_node_fetched_ = true;
      const char* node = std::getenv(kNodeNameVariable);
      if (node != nullptr && *node != '\0') {
        client_node = node;
        fetch_client = state_.nodes.count(client_node) == 0;
        if (fetch_client) wanted.insert(client_node);
      }
    }
  }
  std::map<std::string, NodeInfo> found;
  bool forbidden = false;
  std::set<std::string> failed;
  for (const std::string& name : wanted) {
    ListWatchSpec spec{"/api/v1/nodes", "", "", "nodes"};
    // A short timeout: the slices' watch waits for these lookups.
    KubeClient::Response response = client_->Get(absl::StrCat("/api/v1/nodes/", name),
                                                 &node_cancel_, std::chrono::seconds(5));
    if (node_cancel_.cancelled()) return;
    nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    auto node = response.status == 200 ? ParseNode(body) : absl::StatusOr<NodeInfo>(ApiError("get", spec, response));
    if (node.ok()) {
      found[name] = *node;
      continue;
    }
    if (response.status == 403) {
      forbidden = true;
      gpr_log(GPR_INFO,
              "lbkit-k8s: %s; endpoints' localities carry their zone only (no region), and the "
              "client's own locality comes from LBKIT_LOCALITY only",
              std::string(node.status().message()).c_str());
      break;
    }
    failed.insert(name);  // logged once; looked up again on a re-list
    gpr_log(GPR_INFO, "lbkit-k8s: node %s: %s", name.c_str(),
            std::string(node.status().message()).c_str());
  }
  absl::MutexLock lock(&mu_);
  nodes_readable_ = !forbidden;
  for (auto& [name, node] : found) state_.nodes[name] = node;
  nodes_failed_.insert(failed.begin(), failed.end());
  if (!found.empty()) snapshot_.reset();
  if (!client_node.empty()) {
    if (auto it = state_.nodes.find(client_node); it != state_.nodes.end()) {
      if (it->second.region.empty()) {
        // lbkit_locality's names start with the region: without one the
        // client's node says nothing usable.
        gpr_log(GPR_INFO, "lbkit-k8s: node %s has no %s label; set LBKIT_LOCALITY",
                client_node.c_str(), kRegionLabel);
      } else {
        client_locality_ = internal::Locality{it->second.region, it->second.zone, ""};
      }
    }
  }
}

std::string LocalityText(const internal::Locality& locality) {
  if (locality.zone.empty()) return locality.region;
  return absl::StrCat(locality.region, "/", locality.zone);
}

uint64_t ServiceWatch::AddListener(std::function<void()> listener) {
  return listeners_.Add(std::move(listener));
}

void ServiceWatch::RemoveListener(uint64_t id) { listeners_.Remove(id); }

void ServiceWatch::Notify() { listeners_.Notify(); }

ServiceWatch::View ServiceWatch::Read() {
  absl::MutexLock lock(&mu_);
  View view;
  view.ready = service_listed_ && slices_listed_ && pods_listed_;
  if (snapshot_ == nullptr) snapshot_ = std::make_shared<const ServiceState>(state_);
  view.state = snapshot_;
  view.error = ErrorLocked();
  view.client_locality = client_locality_;
  return view;
}

ServiceWatchInfo ServiceWatch::Info() {
  ServiceWatchInfo info;
  info.namespace_name = namespace_name_;
  info.service = service_;
  info.api_server = client_->credentials().server;
  info.credentials = client_->credentials().source;
  info.listeners = listeners_.size();
  std::shared_ptr<ListWatch> pods;
  {
    absl::MutexLock lock(&mu_);
    info.ready = service_listed_ && slices_listed_ && pods_listed_;
    info.error = std::string(ErrorLocked().message());
    for (const auto& [name, slice] : state_.slices) {
      int count = 0;
      for (const SliceEndpoint& endpoint : slice.endpoints) {
        count += static_cast<int>(endpoint.addresses.size());
      }
      info.endpoints_per_slice[name] = count;
    }
    info.nodes_readable = nodes_readable_;
    if (client_locality_.has_value()) info.client_locality = LocalityText(*client_locality_);
    pods = pods_lw_;
  }
  for (const auto& lw : {services_lw_, slices_lw_, pods}) {
    if (lw != nullptr) info.resources.push_back(lw->stats());
  }
  return info;
}

}  // namespace lbkit::resolvers::k8s
