// Where the API server is and how to prove who we are, found the way
// Kubernetes' own clients find it:
//   1. $KUBECONFIG, when set (the first file of a ':'-separated list);
//   2. in a pod ($KUBERNETES_SERVICE_HOST set): the service account's token
//      and ca.crt under /var/run/secrets/kubernetes.io/serviceaccount;
//   3. ~/.kube/config.
// A kubeconfig's current context gives the server, the CA (file or data),
// and a token, token file, or client certificate and key (file or data).
//
//   auto credentials = LoadKubeCredentials();
//   if (!credentials.ok()) ... // names every place it looked

#ifndef LBKIT_RESOLVERS_K8S_KUBE_CONFIG_H_
#define LBKIT_RESOLVERS_K8S_KUBE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lbkit::resolvers::k8s {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";
// Overrides kServiceAccountDir (a non-standard mount, and tests).
inline constexpr char kServiceAccountDirVariable[] = "LBKIT_K8S_SERVICE_ACCOUNT_DIR";

struct KubeCredentials {
  std::string server;  // "https://10.96.0.1:443"
  std::string source;  // where these came from, for messages
  // The CA: a PEM file or PEM data; neither means the system's CAs.
  std::string ca_file;
  std::string ca_data;
  bool insecure_skip_tls_verify = false;
  // A bearer token, given or read from a file before every request (bound
  // service-account tokens are rotated by the kubelet).
  std::string token;
  std::string token_file;
  // A client certificate (file or PEM data) and its key.
  std::string client_cert_file, client_cert_data;
  std::string client_key_file, client_key_data;
  // The namespace a target without one means: the pod's own, or the
  // context's; "default" otherwise.
  std::string default_namespace = "default";
};

absl::StatusOr<KubeCredentials> LoadKubeCredentials();

// The parts, for tests: a kubeconfig's text (`dir` resolves relative file
// names, as kubectl does) and a service-account directory.
absl::StatusOr<KubeCredentials> ParseKubeconfig(absl::string_view text, absl::string_view dir,
                                                absl::string_view source);
absl::StatusOr<KubeCredentials> InClusterCredentials(absl::string_view service_account_dir);

}  // namespace lbkit::resolvers::k8s

#endif  // LBKIT_RESOLVERS_K8S_KUBE_CONFIG_H_
