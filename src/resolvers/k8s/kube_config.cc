#include "resolvers/k8s/kube_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lbkit::resolvers::k8s {

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

bool FileExists(const std::string& path) { return std::ifstream(path).good(); }

std::string Resolve(absl::string_view dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  return absl::StrCat(dir, "/", path);
}

// The entry of `list` (clusters, users, contexts) named `name`, as
// kubeconfig writes them: - name: X \n cluster: {...}.
YAML::Node Named(const YAML::Node& list, const std::string& name, const char* inner) {
  if (!list.IsSequence()) return YAML::Node();
  for (const YAML::Node& entry : list) {
    if (entry.IsMap() && entry["name"] && entry["name"].as<std::string>("") == name) {
      return entry[inner];
    }
  }
  return YAML::Node();
}

std::string Scalar(const YAML::Node& map, const char* key) {
  if (!map.IsMap()) return "";
  YAML::Node value = map[key];
  return value && value.IsScalar() ? value.as<std::string>("") : "";
}

absl::StatusOr<std::string> Base64Field(const YAML::Node& map, const char* key,
                                        absl::string_view where) {
  std::string encoded = Scalar(map, key);
  if (encoded.empty()) return std::string();
  std::string decoded;
  if (!absl::Base64Unescape(encoded, &decoded)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", key, " is not base64"));
  }
  return decoded;
}

}  // namespace

absl::StatusOr<KubeCredentials> ParseKubeconfig(absl::string_view text, absl::string_view dir,
                                                absl::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not YAML: ", e.what()));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(source, ": not a kubeconfig"));
  const std::string context_name = Scalar(root, "current-context");
  if (context_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no current-context"));
  }
  YAML::Node context = Named(root["contexts"], context_name, "context");
  if (!context.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": current-context \"", context_name, "\" is not in contexts"));
  }
  const std::string cluster_name = Scalar(context, "cluster");
  const std::string user_name = Scalar(context, "user");
  YAML::Node cluster = Named(root["clusters"], cluster_name, "cluster");
  if (!cluster.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": context \"", context_name, "\" names cluster \"", cluster_name,
        "\", which is not in clusters"));
  }
  KubeCredentials out;
  out.source = absl::StrCat(source, " (context ", context_name, ")");
  out.server = Scalar(cluster, "server");
  if (out.server.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": cluster \"", cluster_name, "\" has no server"));
  }
  const std::string where = absl::StrCat(source, ": cluster \"", cluster_name, "\"");
  out.ca_file = Resolve(dir, Scalar(cluster, "certificate-authority"));
  auto ca_data = Base64Field(cluster, "certificate-authority-data", where);
  if (!ca_data.ok()) return ca_data.status();
  out.ca_data = *std::move(ca_data);
  out.insecure_skip_tls_verify = Scalar(cluster, "insecure-skip-tls-verify") == "true";
  if (!Scalar(cluster, "proxy-url").empty() || !Scalar(cluster, "tls-server-name").empty()) {
    return absl::UnimplementedError(absl::StrCat(
        where, ": proxy-url and tls-server-name are not supported by lbkit-k8s"));
  }
  if (std::string ns = Scalar(context, "namespace"); !ns.empty()) out.default_namespace = ns;

  YAML::Node user = user_name.empty() ? YAML::Node() : Named(root["users"], user_name, "user");
  if (!user_name.empty() && !user.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": context \"", context_name, "\" names user \"", user_name,
        "\", which is not in users"));
  }
  if (user.IsMap()) {
    const std::string user_where = absl::StrCat(source, ": user \"", user_name, "\"");
    if (user["exec"] || user["auth-provider"]) {
      return absl::UnimplementedError(absl::StrCat(
          user_where, " authenticates with an exec or auth-provider plugin, which lbkit-k8s does "
                      "not run; use a token, a token file or a client certificate"));
    }
    out.token = Scalar(user, "token");
    out.token_file = Resolve(dir, Scalar(user, "tokenFile"));
    out.client_cert_file = Resolve(dir, Scalar(user, "client-certificate"));
    out.client_key_file = Resolve(dir, Scalar(user, "client-key"));
    auto cert = Base64Field(user, "client-certificate-data", user_where);
    if (!cert.ok()) return cert.status();
    out.client_cert_data = *std::move(cert);
    auto key = Base64Field(user, "client-key-data", user_where);
    if (!key.ok()) return key.status();
    out.client_key_data = *std::move(key);
    if (!Scalar(user, "username").empty()) {
      return absl::UnimplementedError(
          absl::StrCat(user_where, ": basic authentication is not supported"));
    }
  }
  return out;
}

absl::StatusOr<KubeCredentials> InClusterCredentials(absl::string_view service_account_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::NotFoundError("not in a pod (KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  KubeCredentials out;
  const std::string dir(service_account_dir);
  out.source = absl::StrCat("the pod's service account (", dir, ")");
  const std::string host_text = absl::StrContains(host, ':') ? absl::StrCat("[", host, "]") : host;
  out.server = absl::StrCat("https://", host_text, ":", port);
  out.token_file = absl::StrCat(dir, "/token");
  if (!FileExists(out.token_file)) {
    return absl::NotFoundError(absl::StrCat(
        "in a pod, but ", out.token_file,
        " is missing: is automountServiceAccountToken false?"));
  }
  out.ca_file = absl::StrCat(dir, "/ca.crt");
  std::string ns;
  if (ReadFile(absl::StrCat(dir, "/namespace"), &ns)) {
    ns = std::string(absl::StripAsciiWhitespace(ns));
    if (!ns.empty()) out.default_namespace = ns;
  }
  return out;
}

absl::StatusOr<KubeCredentials> LoadKubeCredentials() {
  auto from_file = [](const std::string& path) -> absl::StatusOr<KubeCredentials> {
    std::string text;
    if (!ReadFile(path, &text)) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    const size_t slash = path.rfind('/');
    return ParseKubeconfig(text, slash == std::string::npos ? "" : path.substr(0, slash), path);
  };
  if (const char* kubeconfig = std::getenv("KUBECONFIG"); kubeconfig != nullptr && *kubeconfig) {
    std::vector<std::string> files = absl::StrSplit(kubeconfig, ':', absl::SkipEmpty());
    if (!files.empty()) return from_file(files.front());
  }
  const char* dir_override = std::getenv(kServiceAccountDirVariable);
  auto in_cluster = InClusterCredentials(
      dir_override != nullptr && *dir_override ? dir_override : kServiceAccountDir);
  if (in_cluster.ok() || !absl::IsNotFound(in_cluster.status()) ||
      std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) {
    return in_cluster;
  }
  const char* home = std::getenv("HOME");
  const std::string home_config = absl::StrCat(home != nullptr ? home : "", "/.kube/config");
  if (home != nullptr && FileExists(home_config)) return from_file(home_config);
  return absl::UnauthenticatedError(absl::StrCat(
      "no credentials for the Kubernetes API: ", in_cluster.status().message(),
      ", $KUBECONFIG unset and no ", home_config));
}

}  // namespace lbkit::resolvers::k8s
