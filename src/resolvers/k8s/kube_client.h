// HTTPS requests to the Kubernetes API server through libcurl: a plain GET
// (get, list) and a streamed GET (watch), each blocking its calling thread
// but cancellable at once from any other (Canceller).
//
//   KubeClient client(*LoadKubeCredentials());
//   Canceller cancel;
//   auto response = client.Get("/api/v1/namespaces/default/services/greeter", &cancel);
//   client.Stream("/apis/discovery.k8s.io/v1/...?watch=1", on_bytes, &cancel);

#ifndef LBKIT_RESOLVERS_K8S_KUBE_CLIENT_H_
#define LBKIT_RESOLVERS_K8S_KUBE_CLIENT_H_

#include <chrono>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "resolvers/k8s/kube_config.h"

namespace lbkit::resolvers::k8s {

// Stops a thread's request or wait from another thread.
class Canceller {
 public:
  Canceller();
  ~Canceller();
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;

  void Cancel();
  bool cancelled() const;
  // Waits `delay`; false when cancelled meanwhile.
  bool Sleep(std::chrono::milliseconds delay);
  // libcurl's multi handle the requests of this thread run on (its
  // connection cache keeps one connection to the API server).
  void* multi() const { return multi_; }

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  void* multi_;
};

class KubeClient {
 public:
  explicit KubeClient(KubeCredentials credentials);
  const KubeCredentials& credentials() const { return credentials_; }

  struct Response {
    long status = 0;      // the HTTP status; 0 when no response came
    std::string body;     // non-streamed responses, and error bodies of streams
    absl::Status transport;  // a connection, TLS or credentials problem
  };
  Response Get(const std::string& path_and_query, Canceller* cancel,
               std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // Streams the 200 body to `on_bytes`, chunk by chunk, until the server
  // ends it, `on_bytes` returns false, the connection breaks (`transport`), `timeout` passes or
  // `cancel` fires. A non-200 body is returned whole in `body`.
  Response Stream(const std::string& path_and_query,
                  const std::function<bool(absl::string_view)>& on_bytes,
                  std::chrono::seconds timeout, Canceller* cancel) const;

 private:
  Response Perform(const std::string& path_and_query,
                   const std::function<bool(absl::string_view)>* on_bytes,
                   std::chrono::seconds timeout, Canceller* cancel) const;
  KubeCredentials credentials_;
};

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_KUBE_CLIENT_H_
