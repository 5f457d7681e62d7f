#include "resolvers/k8s/istio_rules.h"

#include <algorithm>
#include <utility>

#include "absl/base/const_init.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "resolvers/k8s/kube_objects.h"

namespace lbkit::resolvers::k8s {

namespace {

using nlohmann::json;

std::string Namespace(const json& object) {
  const json* metadata = JsonMember(object, "metadata");
  const std::string ns = metadata != nullptr ? JsonStringMember(*metadata, "namespace") : "";
  return ns.empty() ? "default" : ns;
}

std::string Metadata(const json& object, const char* key) {
  const json* metadata = JsonMember(object, "metadata");
  return metadata != nullptr ? JsonStringMember(*metadata, key) : "";
}

// Istio's reading of a rule's host: a short name is a Service in the
// rule's namespace; anything with a dot is taken as written.
std::string Fqdn(const std::string& host, const std::string& ns, const std::string& domain) {
  if (host.empty() || host == "*" || host.find('.') != std::string::npos) return host;
  return absl::StrCat(host, ".", ns, ".svc.", domain);
}

bool Covers(const std::string& pattern, const std::string& target) {
  if (pattern == target || pattern == "*") return true;
  return absl::StartsWith(pattern, "*") && absl::EndsWith(target, pattern.substr(1));
}

std::vector<std::string> Hosts(const json& rule, const char* kind) {
  const json* spec = JsonMember(rule, "spec");
  std::vector<std::string> hosts;
  if (spec == nullptr) return hosts;
  if (std::string(kind) == "DestinationRule") {
    hosts.push_back(JsonStringMember(*spec, "host"));
  } else if (const json* list = JsonMember(*spec, "hosts"); list != nullptr && list->is_array()) {
    for (const json& h : *list) {
      if (h.is_string()) hosts.push_back(h.get<std::string>());
    }
  }
  return hosts;
}

bool ForTarget(const json& rule, const char* kind, const std::string& target,
               const RuleQuery& query) {
  for (const std::string& host : Hosts(rule, kind)) {
    if (Covers(Fqdn(host, Namespace(rule), query.cluster_domain), target)) return true;
  }
  return false;
}

// Oldest first (creationTimestamp is RFC 3339 in UTC: text order is time
// order), then by namespace and name, as Istio orders rules.
bool Older(const json& a, const json& b) {
  const std::string ta = Metadata(a, "creationTimestamp"), tb = Metadata(b, "creationTimestamp");
  if (ta != tb) return ta < tb;
  if (Namespace(a) != Namespace(b)) return Namespace(a) < Namespace(b);
  return Metadata(a, "name") < Metadata(b, "name");
}

void AddToKey(SelectedRules* out, const json& rule, const char* kind) {
  absl::StrAppend(&out->key, kind, "/", Namespace(rule), "/", Metadata(rule, "name"), "@",
                  Metadata(rule, "uid"), ":", Metadata(rule, "resourceVersion"), ";");
  out->names.push_back(absl::StrCat(kind, " ", Namespace(rule), "/", Metadata(rule, "name")));
}

}  // namespace

bool ExportedTo(const json& object, const std::string& client_namespace) {
  const json* spec = JsonMember(object, "spec");
  const json* export_to = spec != nullptr ? JsonMember(*spec, "exportTo") : nullptr;
  if (export_to == nullptr || !export_to->is_array() || export_to->empty()) return true;
  for (const json& entry : *export_to) {
    if (!entry.is_string()) continue;
    const std::string& to = entry.get_ref<const std::string&>();
    if (to == "*" || to == client_namespace) return true;
    if (to == "." && Namespace(object) == client_namespace) return true;
  }
  return false;  // "~", or other namespaces only
}

SelectedRules SelectIstioRules(const std::vector<json>& destination_rules,
                               const std::vector<json>& virtual_services, const RuleQuery& query) {
  const std::string target = absl::StrCat(query.service, ".", query.service_namespace, ".svc.",
                                          query.cluster_domain);
  SelectedRules out;
  // DestinationRules: the first namespace on Istio's lookup path that has any.
  for (const std::string& ns :
       {query.client_namespace, query.service_namespace, query.root_namespace}) {
    std::vector<json> found;
    for (const json& rule : destination_rules) {
      if (Namespace(rule) == ns && ExportedTo(rule, query.client_namespace) &&
          ForTarget(rule, "DestinationRule", target, query)) {
        found.push_back(rule);
      }
    }
    if (found.empty()) continue;
    std::sort(found.begin(), found.end(), Older);
    for (const json& rule : found) AddToKey(&out, rule, "DestinationRule");
    out.destination_rules = std::move(found);
    break;
  }
  std::vector<json> services;
  for (const json& rule : virtual_services) {
    if (ExportedTo(rule, query.client_namespace) &&
        ForTarget(rule, "VirtualService", target, query)) {
      services.push_back(rule);
    }
  }
  std::stable_sort(services.begin(), services.end(), [&](const json& a, const json& b) {
    const bool a_local = Namespace(a) == query.client_namespace;
    const bool b_local = Namespace(b) == query.client_namespace;
    if (a_local != b_local) return a_local;
    return Older(a, b);
  });
  for (const json& rule : services) AddToKey(&out, rule, "VirtualService");
  out.virtual_services = std::move(services);
  return out;
}

std::string RulesDocument(const SelectedRules& rules) {
  json items = json::array();
  auto add = [&](const json& rule, const char* kind) {
    json item = rule;
    // Items of a list carry their kind (the translator reads it); the API
    // version is Istio's either way.
    if (!item.contains("kind")) item["kind"] = kind;
    if (!item.contains("apiVersion")) item["apiVersion"] = "networking.istio.io/v1";
    if (item.contains("status")) item.erase("status");
    if (item.contains("metadata") && item["metadata"].is_object()) {
      item["metadata"].erase("managedFields");
      item["metadata"].erase("annotations");
    }
    items.push_back(std::move(item));
  };
  for (const json& rule : rules.destination_rules) add(rule, "DestinationRule");
  for (const json& rule : rules.virtual_services) add(rule, "VirtualService");
  return json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump(2);
}

std::shared_ptr<IstioRulesWatch> IstioRulesWatch::Get(
    const std::shared_ptr<const KubeClient>& client) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* registry = new std::map<std::string, std::weak_ptr<IstioRulesWatch>>();
  absl::MutexLock lock(&mu);
  std::weak_ptr<IstioRulesWatch>& slot = (*registry)[client->credentials().server];
  if (auto live = slot.lock()) return live;
  std::shared_ptr<IstioRulesWatch> watch(new IstioRulesWatch(client));
  slot = watch;
  watch->Start();
  return watch;
}

IstioRulesWatch::~IstioRulesWatch() {
  absl::MutexLock lock(&mu_);
  for (Kind* kind : {&destination_rules_, &virtual_services_}) {
    if (kind->list_watch != nullptr) kind->list_watch->Stop();
  }
}

void IstioRulesWatch::Start() {
  std::weak_ptr<IstioRulesWatch> weak = weak_from_this();
  auto start = [&](Kind IstioRulesWatch::*kind, const char* resource) {
    ListWatchCallbacks callbacks;
    callbacks.on_list = [weak, kind](std::vector<json> items) {
      if (auto self = weak.lock()) self->OnList(kind, std::move(items));
    };
    callbacks.on_event = [weak, kind](const json& object, bool deleted) {
      if (auto self = weak.lock()) self->OnEvent(kind, object, deleted);
    };
    callbacks.on_error = [weak, kind](const absl::Status& error) {
      if (auto self = weak.lock()) self->OnError(kind, error);
    };
    ListWatchSpec spec;
    spec.path = absl::StrCat("/apis/networking.istio.io/v1/", resource);
    spec.fallback_paths = {absl::StrCat("/apis/networking.istio.io/v1beta1/", resource),
                           absl::StrCat("/apis/networking.istio.io/v1alpha3/", resource)};
    spec.resource = resource;
    auto list_watch = ListWatch::Start(client_, std::move(spec), std::move(callbacks));
    absl::MutexLock lock(&mu_);
    (this->*kind).list_watch = std::move(list_watch);
  };
  start(&IstioRulesWatch::destination_rules_, "destinationrules");
  start(&IstioRulesWatch::virtual_services_, "virtualservices");
}

void IstioRulesWatch::OnList(Kind IstioRulesWatch::*kind, std::vector<json> items) {
  {
    absl::MutexLock lock(&mu_);
    Kind& k = this->*kind;
    k.objects.clear();
    for (json& item : items) {
      // The key first: json's assignment takes its operand by value, so
      // the move would happen before a key computed in the same statement.
      const std::string key = absl::StrCat(Namespace(item), "/", Metadata(item, "name"));
      k.objects[key] = std::move(item);
    }
    k.snapshot.reset();
    k.listed = true;
    k.error = absl::OkStatus();
  }
  Notify();
}

void IstioRulesWatch::OnEvent(Kind IstioRulesWatch::*kind, const json& object, bool deleted) {
  {
    absl::MutexLock lock(&mu_);
    Kind& k = this->*kind;
    const std::string key = absl::StrCat(Namespace(object), "/", Metadata(object, "name"));
    if (deleted) {
      k.objects.erase(key);
    } else {
      k.objects[key] = object;
    }
    k.snapshot.reset();
    k.error = absl::OkStatus();
  }
  Notify();
}

void IstioRulesWatch::OnError(Kind IstioRulesWatch::*kind, const absl::Status& error) {
  {
    absl::MutexLock lock(&mu_);
    Kind& k = this->*kind;
    if (k.error.message() == error.message()) return;
    k.error = error;
  }
  Notify();
}

IstioRulesWatch::View IstioRulesWatch::Read() {
  absl::MutexLock lock(&mu_);
  View view;
  view.ready = true;
  for (Kind* kind : {&destination_rules_, &virtual_services_}) {
    // Not served at any version: the cluster has no Istio, so no rules.
    const bool not_served = !kind->listed && absl::IsNotFound(kind->error);
    view.ready = view.ready && (kind->listed || not_served);
    if (!kind->error.ok() && view.error.ok()) view.error = kind->error;
    if (kind->snapshot == nullptr) {
      auto snapshot = std::make_shared<std::vector<json>>();
      for (const auto& [key, object] : kind->objects) snapshot->push_back(object);
      kind->snapshot = std::move(snapshot);
    }
  }
  view.destination_rules = destination_rules_.snapshot;
  view.virtual_services = virtual_services_.snapshot;
  return view;
}

std::vector<ListWatchStats> IstioRulesWatch::Stats() const {
  std::vector<std::shared_ptr<ListWatch>> watches;
  {
    absl::MutexLock lock(&mu_);
    watches = {destination_rules_.list_watch, virtual_services_.list_watch};
  }
  std::vector<ListWatchStats> out;
  for (const auto& w : watches) {
    if (w != nullptr) out.push_back(w->stats());
  }
  return out;
}

uint64_t IstioRulesWatch::AddListener(std::function<void()> listener) {
  return listeners_.Add(std::move(listener));
}

void IstioRulesWatch::RemoveListener(uint64_t id) { listeners_.Remove(id); }

void IstioRulesWatch::Notify() { listeners_.Notify(); }

}  // namespace lbkit::resolvers::k8s
