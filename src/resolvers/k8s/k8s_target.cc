#include "resolvers/k8s/k8s_target.h"

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lbkit::resolvers::k8s {

namespace {

constexpr absl::string_view kSyntax =
    "the target must be lbkit-k8s:///SERVICE[.NAMESPACE[.svc[.CLUSTER-DOMAIN]]]:PORT, "
    "e.g. lbkit-k8s:///greeter.default:grpc";

std::string CheckLabel(absl::string_view name, bool must_start_with_letter) {
  if (name.empty()) return "is empty";
  if (name.size() > 63) return absl::StrCat("is ", name.size(), " characters long (at most 63)");
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) {
      return "may hold only lowercase letters, digits and '-'";
    }
  }
  if (must_start_with_letter && !absl::ascii_islower(name.front())) {
    return "must start with a lowercase letter";
  }
  if (!absl::ascii_isalnum(name.front()) || !absl::ascii_isalnum(name.back())) {
    return "must start and end with a letter or digit";
  }
  return "";
}

}  // namespace

std::string K8sTarget::PortText() const {
  return port_name.empty() ? absl::StrCat(port_number) : port_name;
}

std::string CheckServiceName(absl::string_view name) { return CheckLabel(name, true); }
std::string CheckNamespaceName(absl::string_view name) { return CheckLabel(name, false); }

absl::StatusOr<K8sTarget> ParseK8sTarget(
    absl::string_view authority, absl::string_view path,
    const std::map<absl::string_view, absl::string_view>& query) {
  if (!authority.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lbkit-k8s takes no authority (\"", authority,
        "\"): the API server comes from the pod's service account or the kubeconfig; ", kSyntax));
  }
  bool istio = false;
  for (const auto& [key, value] : query) {
    if (key != "istio") {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown parameter \"", key, "\" in the target (the one parameter is istio=true); ",
          kSyntax));
    }
    if (value != "true" && value != "false") {
      return absl::InvalidArgumentError(
          absl::StrCat("istio=", value, " in the target: the value is true or false"));
    }
    istio = value == "true";
  }
  absl::ConsumePrefix(&path, "/");
  const size_t colon = path.rfind(':');
  if (path.empty() || colon == absl::string_view::npos || colon + 1 == path.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path.empty() ? "no Service named" : absl::StrCat("\"", path, "\" names no port"), "; ",
        kSyntax, " (PORT: a Service port's number or name)"));
  }
  K8sTarget target;
  target.istio = istio;
  const absl::string_view host = path.substr(0, colon);
  const absl::string_view port = path.substr(colon + 1);
  uint32_t number = 0;
  if (absl::SimpleAtoi(port, &number)) {
    if (number < 1 || number > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("port ", port, " is not in [1, 65535]; ", kSyntax));
    }
    target.port_number = static_cast<uint16_t>(number);
  } else {
    // A Service port name is a DNS-1123 label (IANA_SVC_NAME is stricter).
    if (std::string why = CheckNamespaceName(port); !why.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("port \"", port, "\" is neither a number nor a port name: the name ", why));
    }
    target.port_name = std::string(port);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  // SERVICE, SERVICE.NS, SERVICE.NS.svc, SERVICE.NS.svc.<cluster domain>.
  if (parts.size() >= 3 && parts[2] != "svc") {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", host, "\" is not a Service name: the third part must be \"svc\"; ", kSyntax));
  }
  target.service = std::string(parts[0]);
  if (std::string why = CheckServiceName(target.service); !why.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Service name \"", target.service, "\" ", why, "; ", kSyntax));
  }
  if (parts.size() >= 2) {
    target.namespace_name = std::string(parts[1]);
    if (std::string why = CheckNamespaceName(target.namespace_name); !why.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace \"", target.namespace_name, "\" ", why, "; ", kSyntax));
    }
  }
  return target;
}

}  // namespace lbkit::resolvers::k8s
