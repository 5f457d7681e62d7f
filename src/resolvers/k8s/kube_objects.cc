#include "resolvers/k8s/kube_objects.h"

#include <algorithm>
#include <cstddef>
#include <set>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace lbkit::resolvers::k8s {

namespace {

using nlohmann::json;

absl::Status Malformed(absl::string_view kind, absl::string_view name, absl::string_view field,
                       absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(kind, " ", name.empty() ? "(no name)" : name, ": ", field, " ", what));
}

// A map of strings (labels, selector).
absl::StatusOr<Labels> StringMap(const json* value, absl::string_view kind,
                                 absl::string_view name, absl::string_view field) {
  Labels out;
  if (value == nullptr) return out;
  if (!value->is_object()) return Malformed(kind, name, field, "is not an object");
  for (const auto& [key, v] : value->items()) {
    if (!v.is_string()) return Malformed(kind, name, absl::StrCat(field, ".", key), "is not a string");
    out[key] = v.get<std::string>();
  }
  return out;
}

absl::StatusOr<std::vector<ServicePort>> Ports(const json* value, absl::string_view kind,
                                               absl::string_view name) {
  std::vector<ServicePort> out;
  if (value == nullptr) return out;
  if (!value->is_array()) return Malformed(kind, name, "ports", "is not a list");
  for (size_t i = 0; i < value->size(); ++i) {
    const json& entry = (*value)[i];
    const std::string field = absl::StrCat("ports[", i, "]");
    if (!entry.is_object()) return Malformed(kind, name, field, "is not an object");
    ServicePort port;
    port.name = JsonStringMember(entry, "name");
    if (const json* p = JsonMember(entry, "port")) {
      if (!p->is_number_integer()) return Malformed(kind, name, field + ".port", "is not an integer");
      port.port = p->get<int>();
    }
    if (std::string protocol = JsonStringMember(entry, "protocol"); !protocol.empty()) {
      port.protocol = protocol;
    }
    out.push_back(std::move(port));
  }
  return out;
}

bool Condition(const json* conditions, const char* key, bool absent) {
  const json* value = conditions != nullptr ? JsonMember(*conditions, key) : nullptr;
  return value != nullptr && value->is_boolean() ? value->get<bool>() : absent;
}

}  // namespace

const json* JsonMember(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string JsonStringMember(const json& object, const char* key) {
  const json* value = JsonMember(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : "";
}

std::string ObjectName(const json& object) {
  const json* metadata = JsonMember(object, "metadata");
  return metadata != nullptr ? JsonStringMember(*metadata, "name") : "";
}

std::string ObjectResourceVersion(const json& object) {
  const json* metadata = JsonMember(object, "metadata");
  return metadata != nullptr ? JsonStringMember(*metadata, "resourceVersion") : "";
}

std::optional<ApiStatus> ParseStatus(const json& object) {
  if (JsonStringMember(object, "kind") != "Status") return std::nullopt;
  ApiStatus status;
  if (const json* code = JsonMember(object, "code"); code != nullptr && code->is_number_integer()) {
    status.code = code->get<int>();
  }
  status.reason = JsonStringMember(object, "reason");
  status.message = JsonStringMember(object, "message");
  return status;
}

absl::StatusOr<ServiceInfo> ParseService(const json& object) {
  ServiceInfo service;
  service.name = ObjectName(object);
  const json* spec = JsonMember(object, "spec");
  if (spec == nullptr || !spec->is_object()) {
    return Malformed("Service", service.name, "spec", "is missing");
  }
  service.type = JsonStringMember(*spec, "type");
  if (service.type.empty()) service.type = "ClusterIP";
  auto selector = StringMap(JsonMember(*spec, "selector"), "Service", service.name, "spec.selector");
  if (!selector.ok()) return selector.status();
  service.selector = *std::move(selector);
  auto ports = Ports(JsonMember(*spec, "ports"), "Service", service.name);
  if (!ports.ok()) return ports.status();
  service.ports = *std::move(ports);
  return service;
}

absl::StatusOr<SliceInfo> ParseEndpointSlice(const json& object) {
  SliceInfo slice;
  slice.name = ObjectName(object);
  slice.address_type = JsonStringMember(object, "addressType");
  auto ports = Ports(JsonMember(object, "ports"), "EndpointSlice", slice.name);
  if (!ports.ok()) return ports.status();
  slice.ports = *std::move(ports);
  const json* endpoints = JsonMember(object, "endpoints");
  if (endpoints == nullptr) return slice;  // a slice with no endpoints is valid
  if (!endpoints->is_array()) {
    return Malformed("EndpointSlice", slice.name, "endpoints", "is not a list");
  }
  for (size_t i = 0; i < endpoints->size(); ++i) {
    const json& entry = (*endpoints)[i];
    const std::string field = absl::StrCat("endpoints[", i, "]");
    if (!entry.is_object()) return Malformed("EndpointSlice", slice.name, field, "is not an object");
    SliceEndpoint endpoint;
    const json* addresses = JsonMember(entry, "addresses");
    if (addresses == nullptr || !addresses->is_array()) {
      return Malformed("EndpointSlice", slice.name, field + ".addresses", "is not a list");
    }
    for (const json& address : *addresses) {
      if (!address.is_string()) {
        return Malformed("EndpointSlice", slice.name, field + ".addresses", "holds a non-string");
      }
      endpoint.addresses.push_back(address.get<std::string>());
    }
    const json* conditions = JsonMember(entry, "conditions");
    endpoint.ready = Condition(conditions, "ready", true);
    endpoint.serving = Condition(conditions, "serving", endpoint.ready);
    endpoint.terminating = Condition(conditions, "terminating", false);
    endpoint.zone = JsonStringMember(entry, "zone");
    endpoint.node_name = JsonStringMember(entry, "nodeName");
    if (const json* ref = JsonMember(entry, "targetRef"); ref != nullptr) {
      if (JsonStringMember(*ref, "kind") == "Pod") endpoint.pod_name = JsonStringMember(*ref, "name");
    }
    slice.endpoints.push_back(std::move(endpoint));
  }
  return slice;
}

absl::StatusOr<Labels> ParsePodLabels(const json& object) {
  const json* metadata = JsonMember(object, "metadata");
  return StringMap(metadata != nullptr ? JsonMember(*metadata, "labels") : nullptr, "Pod",
                   ObjectName(object), "metadata.labels");
}

absl::StatusOr<NodeInfo> ParseNode(const json& object) {
  const json* metadata = JsonMember(object, "metadata");
  auto labels = StringMap(metadata != nullptr ? JsonMember(*metadata, "labels") : nullptr, "Node",
                          ObjectName(object), "metadata.labels");
  if (!labels.ok()) return labels.status();
  NodeInfo node;
  if (auto it = labels->find(kRegionLabel); it != labels->end()) node.region = it->second;
  if (auto it = labels->find(kZoneLabel); it != labels->end()) node.zone = it->second;
  return node;
}

absl::StatusOr<SelectedEndpoints> SelectEndpoints(const ServiceState& state,
                                                  const K8sTarget& target) {
  const std::string service_name =
      absl::StrCat(target.namespace_name, "/", target.service);
  if (!state.service.has_value()) {
    return absl::NotFoundError(absl::StrCat("Service ", service_name, " not found"));
  }
  const ServiceInfo& service = *state.service;
  if (service.type == "ExternalName") {
    return absl::FailedPreconditionError(absl::StrCat(
        "Service ", service_name, " is an ExternalName Service: it has no endpoints; use dns:///"));
  }
  // The Service port the target names: by number (`port`) or by name.
  const ServicePort* port = nullptr;
  for (const ServicePort& p : service.ports) {
    const bool match = target.port_name.empty() ? p.port == target.port_number
                                                : p.name == target.port_name;
    if (match && p.protocol == "TCP") port = &p;
  }
  if (port == nullptr) {
    std::vector<std::string> have;
    for (const ServicePort& p : service.ports) {
      have.push_back(absl::StrCat(p.name.empty() ? "(unnamed)" : p.name, "=", p.port, "/",
                                  p.protocol));
    }
    return absl::NotFoundError(absl::StrCat(
        "Service ", service_name, " has no TCP port ",
        target.port_name.empty() ? "numbered " : "named ", target.PortText(), " (its ports: ",
        have.empty() ? "none" : absl::StrJoin(have, ", "), ")"));
  }

  struct Candidate {
    EndpointSpec spec;
    std::string slice;
  };
  std::map<std::string, Candidate> ready, terminating;  // by address
  SelectedEndpoints out;
  out.service_port = port->port;
  // kube-proxy matches a slice's port to the Service's by name.
  auto port_of = [&](const SliceInfo& slice) -> const ServicePort* {
    const ServicePort* found = nullptr;
    for (const ServicePort& p : slice.ports) {
      if (p.name == port->name && p.protocol == port->protocol) found = &p;
    }
    return found != nullptr && found->port >= 1 && found->port <= 65535 ? found : nullptr;
  };
  // A dual-stack Service lists each pod once per family: one family is
  // taken, IPv4 when it has endpoints (kube-proxy too serves each family
  // on its own).
  bool have_ipv4 = false;
  for (const auto& [slice_name, slice] : state.slices) {
    have_ipv4 = have_ipv4 || (slice.address_type == "IPv4" && port_of(slice) != nullptr &&
                              !slice.endpoints.empty());
  }
  out.address_family = have_ipv4 ? "IPv4" : "IPv6";
  for (const auto& [slice_name, slice] : state.slices) {
    if (slice.address_type != out.address_family) continue;  // the other family, FQDN
    const ServicePort* slice_port = port_of(slice);
    if (slice_port == nullptr) continue;
    for (const SliceEndpoint& endpoint : slice.endpoints) {
      std::map<std::string, Candidate>* into = nullptr;
      // `ready` is false for a terminating pod unless the Service publishes
      // not-ready addresses, which then count as ready, as in kube-proxy.
      if (endpoint.ready) {
        into = &ready;
      } else if (endpoint.serving && endpoint.terminating) {
        into = &terminating;
      } else {
        ++out.not_ready;
        continue;
      }
      internal::EndpointAttributes attributes;
      attributes.locality.zone = endpoint.zone;
      if (auto node = state.nodes.find(endpoint.node_name); node != state.nodes.end()) {
        attributes.locality.region = node->second.region;
        if (attributes.locality.zone.empty()) attributes.locality.zone = node->second.zone;
      }
      if (auto pod = state.pods.find(endpoint.pod_name); pod != state.pods.end()) {
        attributes.labels = pod->second;
      }
      // Only the first address counts: the API defines no meaning for more,
      // and kube-proxy ignores them.
      if (endpoint.addresses.empty()) continue;
      {
        const std::string& ip = endpoint.addresses.front();
        std::string address = slice.address_type == "IPv6"
                                  ? absl::StrCat("[", ip, "]:", slice_port->port)
                                  : absl::StrCat(ip, ":", slice_port->port);
        // During a rollout one address can be in two slices: the first (by
        // slice name) wins.
        into->emplace(address, Candidate{EndpointSpec{address, attributes}, slice_name});
      }
    }
  }
  std::map<std::string, Candidate>* chosen = &ready;
  if (ready.empty() && !terminating.empty()) {
    chosen = &terminating;
    out.terminating_fallback = true;
  } else {
    out.not_ready += static_cast<int>(terminating.size());
  }
  for (auto& [address, candidate] : *chosen) {
    ++out.per_slice[candidate.slice];
    out.endpoints.push_back(std::move(candidate.spec));
  }
  return out;
}

}  // namespace lbkit::resolvers::k8s
