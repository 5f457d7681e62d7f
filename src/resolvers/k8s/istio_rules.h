// Istio's DestinationRules and VirtualServices as lbkit-k8s reads them
// from the cluster (`?istio=true`), and which of them apply to a client
// calling one Service, by Istio's rules (docs/kubernetes.md, "Istio rules
// from the cluster"):
//  - a rule's host is read in the rule's namespace ("reviews" there is
//    reviews.NS.svc.cluster.local); "*.suffix" and "*" cover what they end;
//  - a rule is seen only where its exportTo exports it (absent: everywhere;
//    "." its own namespace; "~" nowhere);
//  - DestinationRules are looked up in the client's namespace, then the
//    Service's, then the root namespace (istio-system); the first namespace
//    that has any for the host gives all of them, oldest first (the
//    translator merges them as Istio does);
//  - VirtualServices: the client's namespace's first, then the oldest.
//
//   auto watch = IstioRulesWatch::Get(client);
//   auto view = watch->Read();
//   auto applicable = SelectIstioRules(*view.destination_rules, *view.virtual_services, {...});

#ifndef LBKIT_RESOLVERS_K8S_ISTIO_RULES_H_
#define LBKIT_RESOLVERS_K8S_ISTIO_RULES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "resolvers/k8s/kube_client.h"
#include "resolvers/k8s/list_watch.h"
#include "resolvers/k8s/listeners.h"

namespace lbkit::resolvers::k8s {

// Istio's default root namespace; LBKIT_ISTIO_ROOT_NAMESPACE overrides it
// (meshConfig.rootNamespace).
inline constexpr char kIstioRootNamespace[] = "istio-system";
inline constexpr char kIstioRootNamespaceVariable[] = "LBKIT_ISTIO_ROOT_NAMESPACE";

struct RuleQuery {
  std::string client_namespace;
  std::string service_namespace;
  std::string service;
  std::string root_namespace = kIstioRootNamespace;
  std::string cluster_domain = "cluster.local";
};

struct SelectedRules {
  std::vector<nlohmann::json> destination_rules;  // in the order to merge
  std::vector<nlohmann::json> virtual_services;   // preferred first
  // Identifies what was selected (uid and resourceVersion of each): the
  // same key means the same translation.
  std::string key;
  // "DestinationRule ns/name" of each, for messages.
  std::vector<std::string> names;
  bool empty() const { return destination_rules.empty() && virtual_services.empty(); }
};

SelectedRules SelectIstioRules(const std::vector<nlohmann::json>& destination_rules,
                               const std::vector<nlohmann::json>& virtual_services,
                               const RuleQuery& query);

// Whether `object`'s exportTo lets `client_namespace` see it.
bool ExportedTo(const nlohmann::json& object, const std::string& client_namespace);

// A kubectl List of the selected rules: what lbkit::TranslateIstio reads.
std::string RulesDocument(const SelectedRules& rules);

// The cluster's DestinationRules and VirtualServices (all namespaces),
// watched once per process and API server; networking.istio.io v1, else
// v1beta1, else v1alpha3, as the cluster serves them.
class IstioRulesWatch : public std::enable_shared_from_this<IstioRulesWatch> {
 public:
  static std::shared_ptr<IstioRulesWatch> Get(const std::shared_ptr<const KubeClient>& client);
  ~IstioRulesWatch();

  uint64_t AddListener(std::function<void()> listener);
  void RemoveListener(uint64_t id);

  struct View {
    // Both listed, or known not to be served (no Istio in the cluster).
    bool ready = false;
    std::shared_ptr<const std::vector<nlohmann::json>> destination_rules, virtual_services;
    absl::Status error;  // the newest problem, OK when none
  };
  View Read();
  std::vector<ListWatchStats> Stats() const;

 private:
  explicit IstioRulesWatch(std::shared_ptr<const KubeClient> client) : client_(std::move(client)) {}
  void Start();
  void Notify();

  struct Kind {
    std::map<std::string, nlohmann::json> objects;  // by namespace/name
    std::shared_ptr<const std::vector<nlohmann::json>> snapshot;
    bool listed = false;
    absl::Status error;
    std::shared_ptr<ListWatch> list_watch;
  };
  void OnList(Kind IstioRulesWatch::*kind, std::vector<nlohmann::json> items);
  void OnEvent(Kind IstioRulesWatch::*kind, const nlohmann::json& object, bool deleted);
  void OnError(Kind IstioRulesWatch::*kind, const absl::Status& error);

  const std::shared_ptr<const KubeClient> client_;
  mutable absl::Mutex mu_;
  Kind destination_rules_ ABSL_GUARDED_BY(mu_);
  Kind virtual_services_ ABSL_GUARDED_BY(mu_);
  Listeners listeners_;
};

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_ISTIO_RULES_H_
