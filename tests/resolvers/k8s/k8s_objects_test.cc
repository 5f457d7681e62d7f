// lbkit-k8s's pure parts: the target, the objects, endpoint selection, the
// watch stream and kubeconfig files.
//
// Provenance of the Kubernetes documents below (copied, then trimmed where
// marked):
//  - kEndpointSliceFromDocs: the EndpointSlice example of
//    https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/
//  - kServiceFromDocs: the multi-port Service of
//    https://kubernetes.io/docs/concepts/services-networking/service/#multi-port-services
//  - The condition rules (ready absent = ready, first address only) from
//    https://kubernetes.io/docs/reference/kubernetes-api/service-resources/endpoint-slice-v1/

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "resolvers/k8s/k8s_target.h"
#include "resolvers/k8s/kube_config.h"
#include "resolvers/k8s/kube_objects.h"
#include "resolvers/k8s/watch_stream.h"

namespace lbkit::resolvers::k8s {
namespace {

using nlohmann::json;

constexpr char kEndpointSliceFromDocs[] = R"({
  "apiVersion": "discovery.k8s.io/v1",
  "kind": "EndpointSlice",
  "metadata": {"name": "example-abc", "labels": {"kubernetes.io/service-name": "example"}},
  "addressType": "IPv4",
  "ports": [{"name": "http", "protocol": "TCP", "port": 80}],
  "endpoints": [{"addresses": ["10.1.2.3"], "conditions": {"ready": true},
                 "hostname": "pod-1", "nodeName": "node-1", "zone": "us-west2-a"}]
})";

constexpr char kServiceFromDocs[] = R"({
  "apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "my-service"},
  "spec": {"selector": {"app.kubernetes.io/name": "MyApp"},
           "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9376},
                     {"name": "https", "protocol": "TCP", "port": 443, "targetPort": 9377}]}
})";

absl::StatusOr<K8sTarget> Parse(absl::string_view path) { return ParseK8sTarget("", path, {}); }

TEST(K8sTarget, AcceptsEveryFormOfAServiceName) {
  auto t = Parse("/greeter.default:grpc");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->service, "greeter");
  EXPECT_EQ(t->namespace_name, "default");
  EXPECT_EQ(t->port_name, "grpc");
  t = Parse("/greeter.prod.svc.cluster.local:50051");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->namespace_name, "prod");
  EXPECT_EQ(t->port_number, 50051);
  t = Parse("greeter:50051");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->namespace_name, "");  // the pod's own
}

TEST(K8sTarget, ErrorsSayWhatIsWrong) {
  auto expect = [](absl::string_view path, absl::string_view words) {
    auto t = Parse(path);
    ASSERT_FALSE(t.ok()) << path;
    EXPECT_NE(t.status().message().find(words), absl::string_view::npos)
        << path << ": " << t.status().message();
  };
  expect("/greeter.default", "names no port");
  expect("/", "no Service named");
  expect("/greeter.default:70000", "not in [1, 65535]");
  expect("/Greeter.default:grpc", "lowercase");
  expect("/greeter.default.cluster:80", "must be \"svc\"");
  expect("/greeter.de_fault:80", "namespace \"de_fault\"");
  expect("/greeter:Grpc_Port", "neither a number nor a port name");
  auto with_authority = ParseK8sTarget("10.0.0.1", "/greeter:80", {});
  EXPECT_NE(with_authority.status().message().find("takes no authority"), absl::string_view::npos);
  auto with_query = ParseK8sTarget("", "/greeter:80", {{"foo", "1"}});
  EXPECT_NE(with_query.status().message().find("unknown parameter \"foo\""), absl::string_view::npos);
}

TEST(KubeObjects, ParsesTheDocumentationsExamples) {
  auto slice = ParseEndpointSlice(json::parse(kEndpointSliceFromDocs));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->name, "example-abc");
  ASSERT_EQ(slice->endpoints.size(), 1u);
  EXPECT_EQ(slice->endpoints[0].zone, "us-west2-a");
  EXPECT_EQ(slice->endpoints[0].node_name, "node-1");
  EXPECT_TRUE(slice->endpoints[0].ready);
  auto service = ParseService(json::parse(kServiceFromDocs));
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_EQ(service->ports.size(), 2u);
  EXPECT_EQ(service->ports[1].name, "https");
  EXPECT_EQ(service->selector.at("app.kubernetes.io/name"), "MyApp");
}

ServiceState DocsState() {
  ServiceState state;
  state.service = *ParseService(json::parse(kServiceFromDocs));
  state.slices["example-abc"] = *ParseEndpointSlice(json::parse(kEndpointSliceFromDocs));
  state.nodes["node-1"] = NodeInfo{"us-west2", "us-west2-a"};
  return state;
}

TEST(SelectEndpoints, MapsTheServicePortToTheSlicePortByName) {
  ServiceState state = DocsState();
  K8sTarget by_name{"my-service", "default", "http", 0};
  auto picked = SelectEndpoints(state, by_name);
  ASSERT_TRUE(picked.ok()) << picked.status();
  ASSERT_EQ(picked->endpoints.size(), 1u);
  // The slice's port (the pod's), not the Service's.
  EXPECT_EQ(picked->endpoints[0].address, "10.1.2.3:80");
  EXPECT_EQ(picked->endpoints[0].attributes.locality.region, "us-west2");
  EXPECT_EQ(picked->endpoints[0].attributes.locality.zone, "us-west2-a");
  K8sTarget by_number{"my-service", "default", "", 80};
  EXPECT_EQ(SelectEndpoints(state, by_number)->endpoints.size(), 1u);
  // The slice has no "https" port: nothing for it.
  K8sTarget https{"my-service", "default", "https", 0};
  EXPECT_TRUE(SelectEndpoints(state, https)->endpoints.empty());
  K8sTarget missing{"my-service", "default", "grpc", 0};
  auto error = SelectEndpoints(state, missing);
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().message(),
            "Service default/my-service has no TCP port named grpc (its ports: http=80/TCP, "
            "https=443/TCP)");
}

json Endpoint(const std::string& ip, json conditions, const std::string& pod) {
  return {{"addresses", {ip}}, {"conditions", conditions}, {"zone", "a"},
          {"targetRef", {{"kind", "Pod"}, {"name", pod}}}};
}

TEST(SelectEndpoints, ReadyOnlyWithKubeProxysTerminatingFallback) {
  ServiceState state = DocsState();
  json slice = json::parse(kEndpointSliceFromDocs);
  slice["endpoints"] = {
      Endpoint("10.0.0.1", {{"ready", true}}, "p1"),
      Endpoint("10.0.0.2", json::object(), "p2"),  // absent = ready
      Endpoint("10.0.0.3", {{"ready", false}, {"serving", true}, {"terminating", true}}, "p3"),
      Endpoint("10.0.0.4", {{"ready", false}}, "p4"),
  };
  slice["endpoints"][0]["addresses"].push_back("10.9.9.9");  // ignored, as kube-proxy does
  state.slices["example-abc"] = *ParseEndpointSlice(slice);
  state.pods["p1"] = {{"version", "v1"}};
  K8sTarget target{"my-service", "default", "http", 0};
  auto picked = SelectEndpoints(state, target);
  ASSERT_TRUE(picked.ok());
  ASSERT_EQ(picked->endpoints.size(), 2u);
  EXPECT_EQ(picked->endpoints[0].address, "10.0.0.1:80");
  EXPECT_EQ(picked->endpoints[0].attributes.labels.at("version"), "v1");
  EXPECT_EQ(picked->endpoints[1].address, "10.0.0.2:80");
  EXPECT_FALSE(picked->terminating_fallback);
  EXPECT_EQ(picked->not_ready, 2);
  EXPECT_EQ(picked->per_slice.at("example-abc"), 2);

  // Nothing ready: the serving, terminating endpoint takes the calls.
  slice["endpoints"] = {slice["endpoints"][2], slice["endpoints"][3]};
  state.slices["example-abc"] = *ParseEndpointSlice(slice);
  picked = SelectEndpoints(state, target);
  ASSERT_EQ(picked->endpoints.size(), 1u);
  EXPECT_EQ(picked->endpoints[0].address, "10.0.0.3:80");
  EXPECT_TRUE(picked->terminating_fallback);
}

TEST(SelectEndpoints, MergesSlicesAndCountsAnAddressOnce) {
  ServiceState state = DocsState();
  json second = json::parse(kEndpointSliceFromDocs);
  second["metadata"]["name"] = "example-def";
  second["endpoints"].push_back(Endpoint("10.1.2.4", {{"ready", true}}, "p"));
  json v6 = json::parse(kEndpointSliceFromDocs);
  v6["metadata"]["name"] = "example-v6";
  v6["addressType"] = "IPv6";
  v6["endpoints"] = {Endpoint("fd00::1", {{"ready", true}}, "p")};
  json fqdn = v6;
  fqdn["metadata"]["name"] = "example-fqdn";
  fqdn["addressType"] = "FQDN";
  fqdn["endpoints"] = {Endpoint("db.example.com", {{"ready", true}}, "p")};
  state.slices["example-def"] = *ParseEndpointSlice(second);
  state.slices["example-v6"] = *ParseEndpointSlice(v6);
  state.slices["example-fqdn"] = *ParseEndpointSlice(fqdn);
  auto picked = SelectEndpoints(state, K8sTarget{"my-service", "default", "http", 0});
  ASSERT_TRUE(picked.ok());
  std::vector<std::string> addresses;
  for (const auto& e : picked->endpoints) addresses.push_back(e.address);
  // Dual stack: one family, IPv4 while it has endpoints.
  EXPECT_EQ(addresses, (std::vector<std::string>{"10.1.2.3:80", "10.1.2.4:80"}));
  state.slices.erase("example-abc");
  state.slices.erase("example-def");
  picked = SelectEndpoints(state, K8sTarget{"my-service", "default", "http", 0});
  ASSERT_EQ(picked->endpoints.size(), 1u);
  EXPECT_EQ(picked->endpoints[0].address, "[fd00::1]:80");
}

TEST(SelectEndpoints, RefusesWhatHasNoEndpoints) {
  ServiceState state;
  K8sTarget target{"greeter", "default", "grpc", 0};
  EXPECT_EQ(SelectEndpoints(state, target).status().message(), "Service default/greeter not found");
  state.service = ServiceInfo{"greeter", "ExternalName", {}, {}};
  EXPECT_NE(SelectEndpoints(state, target).status().message().find("ExternalName"),
            absl::string_view::npos);
}

TEST(KubeObjects, MalformedObjectsNameTheField) {
  auto slice = ParseEndpointSlice(json::parse(
      R"({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": [{"addresses": "x"}]})"));
  EXPECT_EQ(slice.status().message(), "EndpointSlice s: endpoints[0].addresses is not a list");
  auto service = ParseService(json::parse(R"({"metadata": {"name": "g"}, "spec": {"ports": [{"port": "80"}]}})"));
  EXPECT_EQ(service.status().message(), "Service g: ports[0].port is not an integer");
  auto pod = ParsePodLabels(json::parse(R"({"metadata": {"name": "p", "labels": {"a": 1}}})"));
  EXPECT_EQ(pod.status().message(), "Pod p: metadata.labels.a is not a string");
}

TEST(WatchStream, ReassemblesEventsSplitAnywhere) {
  const std::string events =
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"
      "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n"
      "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n";
  for (size_t split = 0; split <= events.size(); ++split) {
    WatchStream stream;
    std::vector<WatchEvent> seen;
    auto on_event = [&](absl::StatusOr<WatchEvent> event) {
      ASSERT_TRUE(event.ok()) << event.status();
      seen.push_back(*event);
    };
    stream.Feed(absl::string_view(events).substr(0, split), on_event);
    stream.Feed(absl::string_view(events).substr(split), on_event);
    ASSERT_EQ(seen.size(), 3u) << "split at " << split;
    EXPECT_EQ(seen[0].resource_version, "5");
    EXPECT_EQ(seen[1].type, WatchEvent::Type::kBookmark);
    EXPECT_EQ(ParseStatus(seen[2].object)->code, 410);
    EXPECT_FALSE(stream.HasPartialLine());
  }
}

TEST(WatchStream, BadEventsAreErrorsThatSayWhy) {
  EXPECT_NE(ParseWatchEvent("}{ not json").status().message().find("not a JSON object"),
            absl::string_view::npos);
  EXPECT_NE(ParseWatchEvent(R"({"object": {}})").status().message().find("no \"type\""),
            absl::string_view::npos);
  EXPECT_NE(ParseWatchEvent(R"({"type": "ADDED"})").status().message().find("no \"object\""),
            absl::string_view::npos);
  EXPECT_NE(ParseWatchEvent(R"({"type": "RENAMED", "object": {}})").status().message().find("RENAMED"),
            absl::string_view::npos);
  WatchStream stream;
  stream.Feed("{\"type\":\"ADDED\",", [](absl::StatusOr<WatchEvent>) { FAIL(); });
  EXPECT_TRUE(stream.HasPartialLine());  // a truncated stream is visible
}

TEST(Kubeconfig, ReadsTheCurrentContext) {
  // The shape kubectl writes (kubectl config view --raw), trimmed.
  const char* text = R"(apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: ca.crt
    server: https://10.0.0.1:6443
  name: prod
- cluster:
    certificate-authority-data: aGVsbG8=
    server: https://127.0.0.1:6443
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
    namespace: team-a
  name: kind-kind
current-context: kind-kind
users:
- name: kind-kind
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
)";
  auto credentials = ParseKubeconfig(text, "/home/me/.kube", "test");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->server, "https://127.0.0.1:6443");
  EXPECT_EQ(credentials->ca_data, "hello");
  EXPECT_EQ(credentials->client_cert_data, "cert");
  EXPECT_EQ(credentials->client_key_data, "key");
  EXPECT_EQ(credentials->default_namespace, "team-a");

  auto missing = ParseKubeconfig(
      std::string(text).replace(std::string(text).find("current-context: kind-kind"), 26,
                                "current-context: nope"),
      "/home/me/.kube", "test");
  EXPECT_EQ(missing.status().message(), "test: current-context \"nope\" is not in contexts");
}

TEST(Kubeconfig, RefusesWhatItCannotDo) {
  const char* exec = R"(clusters: [{name: c, cluster: {server: "https://x"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
users: [{name: u, user: {exec: {command: aws}}}]
)";
  auto credentials = ParseKubeconfig(exec, "", "cfg");
  ASSERT_FALSE(credentials.ok());
  EXPECT_NE(credentials.status().message().find("exec or auth-provider plugin"),
            absl::string_view::npos);
  const char* relative = R"(clusters: [{name: c, cluster: {server: "https://x", certificate-authority: ca.pem}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
users: [{name: u, user: {tokenFile: t/token}}]
)";
  credentials = ParseKubeconfig(relative, "/etc/k", "cfg");
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->ca_file, "/etc/k/ca.pem");  // relative to the file, as kubectl reads it
  EXPECT_EQ(credentials->token_file, "/etc/k/t/token");
}

}  // namespace
}  // namespace lbkit::resolvers::k8s
