// One Kubernetes Service as the process sees it: its Service object, its
// EndpointSlices and its pods' labels, each kept current by a ListWatch,
// plus the nodes' regions. One ServiceWatch per (namespace, Service) in a
// process, shared by every channel that targets it; it stops when the last
// one lets go.
//
//   auto watch = ServiceWatch::Get("default", "greeter");
//   uint64_t id = (*watch)->AddListener([] { /* something changed */ });
//   ServiceWatch::View view = (*watch)->Read();
//   if (view.ready) SelectEndpoints(*view.state, target);
//   (*watch)->RemoveListener(id);

#ifndef LBKIT_RESOLVERS_K8S_SERVICE_WATCH_H_
#define LBKIT_RESOLVERS_K8S_SERVICE_WATCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/endpoint_attributes.h"
#include "resolvers/k8s/kube_client.h"
#include "resolvers/k8s/kube_objects.h"
#include "resolvers/k8s/list_watch.h"
#include "resolvers/k8s/listeners.h"

namespace lbkit::resolvers::k8s {

// The environment variable the downward API sets to the client pod's node
// (examples/kubernetes/client.yaml): the client's own locality is its node's.
inline constexpr char kNodeNameVariable[] = "NODE_NAME";

struct ServiceWatchInfo {
  std::string namespace_name, service, api_server, credentials;
  int listeners = 0;
  bool ready = false;
  std::string error;  // why not ready, or the newest problem
  std::vector<ListWatchStats> resources;
  std::map<std::string, int> endpoints_per_slice;  // every endpoint listed, by slice
  bool nodes_readable = true;
  std::string client_locality;  // "region/zone", "" when unknown
};

// "region/zone" (or "region"), as lbkit_locality's `locality` is written.
std::string LocalityText(const internal::Locality& locality);

class ServiceWatch : public std::enable_shared_from_this<ServiceWatch> {
 public:
  // The process's watch of `service` in `namespace_name` ("" = the
  // credentials' default namespace), started on first use. Fails when no
  // credentials are found.
  static absl::StatusOr<std::shared_ptr<ServiceWatch>> Get(const std::string& namespace_name,
                                                           const std::string& service);
  // Every live watch, for DumpState() and Prometheus.
  static std::vector<ServiceWatchInfo> All();

  ~ServiceWatch();
  const std::string& namespace_name() const { return namespace_name_; }
  const std::shared_ptr<const KubeClient>& client() const { return client_; }

  // `listener` runs on a watch thread (never with a lock of ours held)
  // after each change, and after an error; it then calls Read().
  uint64_t AddListener(std::function<void()> listener);
  void RemoveListener(uint64_t id);

  struct View {
    // Service, slices and pods all listed (nodes are best effort).
    bool ready = false;
    std::shared_ptr<const ServiceState> state;
    absl::Status error;  // the newest problem, OK when none
    std::optional<internal::Locality> client_locality;
  };
  View Read();
  ServiceWatchInfo Info();

 private:
  ServiceWatch(std::shared_ptr<const KubeClient> client, std::string namespace_name,
               std::string service);
  void Start();
  void OnServices(std::vector<nlohmann::json> items);
  void OnServiceEvent(const nlohmann::json& object, bool deleted);
  void UpdateServiceLocked(std::optional<ServiceInfo> service) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnSlices(std::vector<nlohmann::json> items);
  void OnSliceEvent(const nlohmann::json& object, bool deleted);
  void OnPods(uint64_t generation, std::vector<nlohmann::json> items);
  void OnPodEvent(uint64_t generation, const nlohmann::json& object, bool deleted);
  void OnError(const std::string& resource, const absl::Status& error);
  // A resource listed or changed: its last error is over.
  void ClearErrorLocked(const std::string& resource) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    api_errors_.erase(resource);
  }
  // Looks up nodes the slices name that are not known yet (and, once, the
  // client's own), on the slices' thread.
  void FetchNodes();
  void Notify();
  ListWatchCallbacks Callbacks(
      const std::string& resource,
      std::function<void(ServiceWatch*, std::vector<nlohmann::json>)> on_list,
      std::function<void(ServiceWatch*, const nlohmann::json&, bool)> on_event);

  const std::shared_ptr<const KubeClient> client_;
  const std::string namespace_name_;
  const std::string service_;
  // Used only on the slices' thread (node lookups).
  Canceller node_cancel_;

  absl::Mutex mu_;
  ServiceState state_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const ServiceState> snapshot_ ABSL_GUARDED_BY(mu_);  // null when stale
  bool service_listed_ ABSL_GUARDED_BY(mu_) = false;
  bool slices_listed_ ABSL_GUARDED_BY(mu_) = false;
  bool pods_listed_ ABSL_GUARDED_BY(mu_) = false;
  std::string pod_selector_ ABSL_GUARDED_BY(mu_);
  uint64_t pod_generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<ListWatch> services_lw_, slices_lw_;
  std::shared_ptr<ListWatch> pods_lw_ ABSL_GUARDED_BY(mu_);
  // A Service that is missing or does not parse.
  absl::Status service_error_ ABSL_GUARDED_BY(mu_);
  // The newest API error of each resource, until it lists or changes again.
  std::map<std::string, absl::Status> api_errors_ ABSL_GUARDED_BY(mu_);
  absl::Status ErrorLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::set<std::string> bad_objects_logged_ ABSL_GUARDED_BY(mu_);
  bool nodes_readable_ ABSL_GUARDED_BY(mu_) = true;
  bool client_node_fetched_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<internal::Locality> client_locality_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> nodes_failed_ ABSL_GUARDED_BY(mu_);

  Listeners listeners_;
};

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_SERVICE_WATCH_H_
