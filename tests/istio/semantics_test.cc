// lbkit-istio reproduces what Istio does with a rule, including the
// defaults Istio applies when a field is absent. One test per defect an
// outside review found on real documents; the YAML is shaped like the
// documents it was found on (bookinfo's rules, kubectl output, Google's
// gRPC greeter sample with its Gateway). docs/istio.md has the semantics.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpc/grpc.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "lbkit/istio.h"
#include "src/core/lib/json/json.h"

namespace lbkit {
namespace {

using grpc_core::Json;

struct Translated {
  Json config;
  std::vector<std::string> warnings;
  std::string text;  // the service config, for failure messages

  // The first loadBalancingConfig entry's policy name and config.
  std::string TopPolicy() const { return Top().begin()->first; }
  const Json::Object& TopConfig() const { return Top().begin()->second.object_value(); }
  const Json::Object& Top() const {
    return config.object_value().at("loadBalancingConfig").array_value()[0].object_value();
  }
  bool Mentions(const std::string& s) const { return absl::StrContains(text, s); }
  bool Warned(const std::string& s) const {
    for (const auto& w : warnings) {
      if (absl::StrContains(w, s)) return true;
    }
    return false;
  }
  const Json::Object* RetryPolicy() const {
    auto mc = config.object_value().find("methodConfig");
    if (mc == config.object_value().end()) return nullptr;
    const auto& first = mc->second.array_value()[0].object_value();
    auto rp = first.find("retryPolicy");
    return rp == first.end() ? nullptr : &rp->second.object_value();
  }
};

Translated Translate(const std::string& yaml, const std::string& host = "") {
  auto result = TranslateIstio(yaml, host);
  EXPECT_TRUE(result.ok()) << result.status();
  Translated t;
  if (!result.ok()) return t;
  auto json = Json::Parse(result->service_config);
  EXPECT_TRUE(json.ok()) << json.status();
  t.config = *json;
  t.warnings = result->warnings;
  t.text = result->service_config;
  return t;
}

// samples/bookinfo/networking/destination-rule-all.yaml's reviews rule.
constexpr char kReviewsSubsets[] = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
)";

// 1. A DestinationRule without trafficPolicy does no outlier detection.
TEST(IstioSemantics, NoTrafficPolicyMeansNoOutlierEjection) {
  const Translated t = Translate(kReviewsSubsets);
  EXPECT_EQ(t.TopPolicy(), "lbkit_least_request") << t.text;
  EXPECT_FALSE(t.Mentions("lbkit_outlier_ejection")) << t.text;
  EXPECT_FALSE(t.Mentions("lbkit_locality")) << t.text;
}

// 2. `kubectl get destinationrule,virtualservice -o yaml` prints a List.
TEST(IstioSemantics, KubectlListOutputTranslates) {
  const Translated t = Translate(R"(apiVersion: v1
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"annotations":{},"name":"reviews","namespace":"default"},"spec":{"host":"reviews","trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}}}
    creationTimestamp: "2026-11-30T10:02:11Z"
    generation: 1
    name: reviews
    namespace: default
    resourceVersion: "48213"
    uid: 2f7c1b36-7f0e-4a8c-9b43-5c1f0e2a9d11
  spec:
    host: reviews
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata:
    name: reviews
    namespace: default
    resourceVersion: "48214"
  spec:
    hosts:
    - reviews
    http:
    - route:
      - destination:
          host: reviews
      timeout: 2s
kind: List
metadata:
  resourceVersion: ""
)");
  EXPECT_EQ(t.TopPolicy(), "lbkit_round_robin") << t.text;
  EXPECT_TRUE(t.Mentions("\"timeout\":\"2s\"")) << t.text;
}

// 3. Other kinds in the file are skipped, each named in a warning.
TEST(IstioSemantics, OtherKindsAreSkippedWithAWarning) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: greeter-gateway
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: grpc, protocol: GRPC}
    hosts: ["*"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: greeter-server
spec:
  replicas: 2
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
spec:
  hosts: [api.example.com]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: greeter
spec:
  host: greeter-server
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
)");
  EXPECT_EQ(t.TopPolicy(), "lbkit_round_robin") << t.text;
  EXPECT_TRUE(t.Warned("document 1 (Gateway greeter-gateway): skipped: a Gateway"));
  EXPECT_TRUE(t.Warned("document 2 (Deployment greeter-server): skipped: a Deployment"));
  EXPECT_TRUE(t.Warned("document 3 (ServiceEntry external): skipped"));
}

// 4. A VirtualService needs no DestinationRule: Istio's default balancer.
TEST(IstioSemantics, AVirtualServiceAloneAppliesWithTheDefaultBalancer) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
    timeout: 10s
)");
  EXPECT_EQ(t.TopPolicy(), "lbkit_least_request") << t.text;
  EXPECT_TRUE(t.Mentions("\"timeout\":\"10s\"")) << t.text;
}

// 5. The deprecated consecutiveErrors is ignored (with a warning); 5xx
// ejection keeps its default instead of ejecting on the first UNAVAILABLE.
TEST(IstioSemantics, DeprecatedConsecutiveErrorsIsIgnored) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  trafficPolicy:
    outlierDetection:
      consecutiveErrors: 1
      interval: 1s
      baseEjectionTime: 3m
)");
  EXPECT_FALSE(t.Mentions("consecutiveGatewayErrors")) << t.text;
  EXPECT_FALSE(t.Mentions("consecutiveErrors")) << t.text;
  EXPECT_EQ(t.TopPolicy(), "lbkit_outlier_ejection");
  EXPECT_TRUE(t.Warned("outlierDetection.consecutiveErrors: ignored")) << absl::StrJoin(t.warnings, "\n");
}

// 6. With outlierDetection, Istio's mesh default turns on locality
// failover; without it, failover does not take effect.
TEST(IstioSemantics, LocalityFailoverFollowsOutlierDetection) {
  const Translated with = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 1
      interval: 1s
      baseEjectionTime: 1m
)");
  ASSERT_EQ(with.TopPolicy(), "lbkit_outlier_ejection") << with.text;
  const auto& child = with.TopConfig().at("childPolicy").array_value()[0].object_value();
  EXPECT_EQ(child.begin()->first, "lbkit_locality") << with.text;

  const Translated without = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld
spec:
  host: helloworld.sample.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover:
        - from: us-east
          to: eu-west
)");
  EXPECT_EQ(without.TopPolicy(), "lbkit_round_robin") << without.text;
  EXPECT_TRUE(without.Warned("localityLbSetting.failover: not applied"));

  // distribute applies on its own.
  const Translated distribute = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: helloworld
spec:
  host: helloworld
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        enabled: true
        distribute:
        - from: region1/zone1/*
          to:
            "region1/zone1/*": 80
            "region1/zone2/*": 20
)");
  EXPECT_EQ(distribute.TopPolicy(), "lbkit_locality") << distribute.text;
}

// 7. Istio retries every route by default: 2 retries.
TEST(IstioSemantics, EveryRouteRetriesByDefault) {
  for (const std::string& yaml :
       {std::string(kReviewsSubsets),
        std::string("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: "
                    "{name: r}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - "
                    "destination: {host: reviews}\n")}) {
    const Translated t = Translate(yaml);
    const Json::Object* retry = t.RetryPolicy();
    ASSERT_NE(retry, nullptr) << t.text;
    EXPECT_EQ(retry->at("maxAttempts").string_value(), "3") << t.text;
    EXPECT_TRUE(t.Mentions("\"retryableStatusCodes\":[\"CANCELLED\",\"UNAVAILABLE\"]")) << t.text;
    EXPECT_FALSE(t.Warned("retr")) << absl::StrJoin(t.warnings, "\n");
  }
  // attempts: 0 turns them off.
  const Translated off = Translate(std::string(kReviewsSubsets) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
    retries: {attempts: 0}
)");
  EXPECT_EQ(off.RetryPolicy(), nullptr) << off.text;
}

// 8 and 9. A destination without subset is the whole service; beside
// others, a destination without weight gets none.
TEST(IstioSemantics, WholeServiceDestinationsAndMissingWeights) {
  const Translated t = Translate(std::string(kReviewsSubsets) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      weight: 50
    - destination: {host: reviews, subset: v2}
      weight: 50
    - destination: {host: reviews, subset: v3}
)");
  ASSERT_EQ(t.TopPolicy(), "lbkit_weighted_subsets") << t.text;
  const auto& subsets = t.TopConfig().at("subsets").array_value();
  ASSERT_EQ(subsets.size(), 3u) << t.text;
  EXPECT_EQ(subsets[0].object_value().at("name").string_value(),
            "reviews.default.svc.cluster.local");
  EXPECT_TRUE(subsets[0].object_value().at("labels").object_value().empty());
  EXPECT_EQ(subsets[0].object_value().at("weight").string_value(), "50");
  EXPECT_EQ(subsets[1].object_value().at("name").string_value(), "v2");
  EXPECT_EQ(subsets[1].object_value().at("weight").string_value(), "50");
  EXPECT_EQ(subsets[2].object_value().at("name").string_value(), "v3");
  EXPECT_EQ(subsets[2].object_value().at("weight").string_value(), "0");
}

// 10. backoff becomes gRPC's initialBackoff; what cannot be carried over is
// named.
TEST(IstioSemantics, RetryBackoffAndUncarriedFieldsAreNamed) {
  const Translated t = Translate(std::string(kReviewsSubsets) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      headers:
        request:
          set: {x-canary: "false"}
    retries:
      attempts: 3
      retryOn: unavailable
      backoff: 100ms
      retryRemoteLocalities: true
)");
  const Json::Object* retry = t.RetryPolicy();
  ASSERT_NE(retry, nullptr) << t.text;
  EXPECT_EQ(retry->at("initialBackoff").string_value(), "0.1s") << t.text;
  EXPECT_EQ(retry->at("maxBackoff").string_value(), "1s") << t.text;
  EXPECT_EQ(retry->at("maxAttempts").string_value(), "4") << t.text;
  EXPECT_TRUE(t.Warned("spec.http[0].retries.retryRemoteLocalities: not carried over"));
  EXPECT_TRUE(t.Warned("spec.http[0].route[0].headers: not carried over"));
}

// 11. http2MaxRequests: 0 is "unset": Istio's default, no limit.
TEST(IstioSemantics, Http2MaxRequestsZeroMeansNoLimit) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      http:
        http2MaxRequests: 0
)");
  EXPECT_EQ(t.TopPolicy(), "lbkit_least_request") << t.text;
}

// 12. A key twice in one mapping (two rules pasted without "---") is an
// error naming the line, never a silently lost rule.
TEST(IstioSemantics, RepeatedKeysAreAnError) {
  auto result = TranslateIstio(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
apiVersion: networking.istio.io/v1
kind: DestinationRule
)");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(result.status().message()),
            "document 1: line 8: key \"apiVersion\" appears twice in one mapping (two documents "
            "without \"---\" between them?)");
}

// 13. Istio merges a second DestinationRule for the same host; the
// messages say so, and connectTimeout is named for what it is.
TEST(IstioSemantics, ASecondRuleForTheHostIsMergedAndSaysSo) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-policy}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {connectTimeout: 30ms}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-subsets}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
)");
  ASSERT_EQ(t.TopPolicy(), "lbkit_weighted_subsets") << t.text;
  EXPECT_TRUE(t.Mentions("\"lbkit_round_robin\"")) << t.text;
  EXPECT_TRUE(t.Warned("document 2 (DestinationRule reviews-subsets): another DestinationRule "
                       "for host \"reviews.default.svc.cluster.local\": merged into document 1"))
      << absl::StrJoin(t.warnings, "\n");
  EXPECT_FALSE(t.Warned("not for host")) << absl::StrJoin(t.warnings, "\n");
  EXPECT_TRUE(t.Warned("connectionPool.tcp.connectTimeout: gRPC gives a connection attempt 100 "
                       "ms at the least"))
      << absl::StrJoin(t.warnings, "\n");
}

// portLevelSettings: the entry for the port the client calls replaces the
// rule's sections (it does not inherit them), as Istio merges them. The
// YAML is istio/api's DestinationRule reference example, with an outlier
// section added at the top level.
TEST(IstioSemantics, PortLevelSettingsFollowTheClientsPort) {
  const std::string yaml = R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bookinfo-ratings-port
spec:
  host: bookinfo-ratings.prod.svc.cluster.local
  trafficPolicy: # Apply to all ports
    outlierDetection:
      consecutive5xxErrors: 3
    portLevelSettings:
    - port:
        number: 80
      loadBalancer:
        simple: LEAST_REQUEST
    - port:
        number: 9080
      loadBalancer:
        simple: ROUND_ROBIN
)";
  auto translate = [&](int port) {
    IstioOptions options;
    options.port = port;
    auto result = TranslateIstio(yaml, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : IstioTranslation{};
  };
  const IstioTranslation p9080 = translate(9080);
  EXPECT_EQ(p9080.service_config, R"({"loadBalancingConfig":[{"lbkit_round_robin":{}}],)"
                                  R"("methodConfig":[{"name":[{}],"retryPolicy":{)"
                                  R"("backoffMultiplier":2,"initialBackoff":"0.025s",)"
                                  R"("maxAttempts":3,"maxBackoff":"0.25s",)"
                                  R"("retryableStatusCodes":["CANCELLED","UNAVAILABLE"]}}]})");
  EXPECT_TRUE(absl::StrContains(translate(80).service_config,
                                R"("loadBalancingConfig":[{"lbkit_least_request":{}}])"));
  // Another port: the rule's own sections.
  const IstioTranslation other = translate(8080);
  EXPECT_TRUE(absl::StrContains(other.service_config, "lbkit_outlier_ejection"));
  EXPECT_TRUE(other.warnings.size() == 1u && !absl::StrContains(other.warnings[0], "portLevel"))
      << absl::StrJoin(other.warnings, "\n");
  // No port: the rule's sections, and a warning saying how to choose.
  const Translated none = Translate(yaml);
  EXPECT_TRUE(none.Warned("spec.trafficPolicy.portLevelSettings: not carried over: give the "
                          "Service port the client calls"));
  EXPECT_FALSE(TranslateIstio(yaml, IstioOptions{"", 70000}).ok());
}

// Connection settings gRPC has a channel argument for come back as channel
// arguments, and ApplyTo() sets them with the service config.
TEST(IstioSemantics, ConnectionSettingsBecomeChannelArguments) {
  auto result = TranslateIstio(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bookinfo-redis}
spec:
  host: myredissrv.prod.svc.cluster.local
  trafficPolicy:
    connectionPool:
      tcp:
        connectTimeout: 30s
        tcpKeepalive:
          time: 600s
          interval: 75s
          probes: 3
      http:
        idleTimeout: 1h
)");
  ASSERT_TRUE(result.ok()) << result.status();
  const std::map<std::string, int> expected = {
      {"grpc.client_idle_timeout_ms", 3600000}, {"grpc.keepalive_permit_without_calls", 1},
      {"grpc.keepalive_time_ms", 600000},       {"grpc.keepalive_timeout_ms", 225000},
      {"grpc.min_reconnect_backoff_ms", 30000}};
  EXPECT_EQ(result->channel_args, expected);
  EXPECT_TRUE(result->warnings.empty()) << absl::StrJoin(result->warnings, "\n");

  grpc::ChannelArguments args;
  result->ApplyTo(&args);
  grpc_channel_args c = args.c_channel_args();
  std::map<std::string, int> applied;
  bool service_config = false;
  for (size_t i = 0; i < c.num_args; ++i) {
    if (c.args[i].type == GRPC_ARG_INTEGER) applied[c.args[i].key] = c.args[i].value.integer;
    if (std::string(c.args[i].key) == GRPC_ARG_SERVICE_CONFIG) {
      service_config = std::string(c.args[i].value.string) == result->service_config;
    }
  }
  for (const auto& [name, value] : expected) EXPECT_EQ(applied[name], value) << name;
  EXPECT_TRUE(service_config);
}

// 14. useSourceIp: one client's calls stick to one backend.
TEST(IstioSemantics, UseSourceIpHashesTheClient) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bookinfo-ratings}
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash:
        useSourceIp: true
)");
  EXPECT_EQ(t.TopPolicy(), "lbkit_ring_hash") << t.text;
  EXPECT_TRUE(t.TopConfig().at("useSourceIp").type() == Json::Type::JSON_TRUE) << t.text;
  EXPECT_FALSE(t.Warned("useSourceIp")) << absl::StrJoin(t.warnings, "\n");
}

// warmupDurationSecs and warmup {duration, minimumPercent, aggression}
// become slowStart on ROUND_ROBIN and LEAST_REQUEST (Envoy's slow start);
// Istio applies it to nothing else.
TEST(IstioSemantics, WarmupBecomesSlowStart) {
  const Translated rr = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: catalog}
spec:
  host: catalog
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      warmupDurationSecs: 100s
)");
  EXPECT_TRUE(rr.Mentions(R"("lbkit_round_robin":{"slowStart":{"window":"100s"}})")) << rr.text;
  const Translated lr = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: catalog}
spec:
  host: catalog
  trafficPolicy:
    loadBalancer:
      warmup:
        duration: 90s
        minimumPercent: 20
        aggression: 2
)");
  EXPECT_TRUE(lr.Mentions(R"("lbkit_least_request":{"slowStart":{"aggression":2,)"
                          R"("minWeightPercent":20,"window":"90s"}})"))
      << lr.text;
  const Translated hash = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: catalog}
spec:
  host: catalog
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpHeaderName: x-user}
      warmupDurationSecs: 100s
)");
  EXPECT_FALSE(hash.Mentions("slowStart")) << hash.text;
  EXPECT_TRUE(hash.Warned("warmupDurationSecs: not carried over: Istio applies slow start to "
                          "ROUND_ROBIN and LEAST_REQUEST only"));
}

// A subset's trafficPolicy overrides the rule's for that subset only
// (Istio's MergeTrafficPolicy, section by section). yaml-cpp's Node
// assignment rebinds a shared node, which once let v2's loadBalancer leak
// into v1's chain.
TEST(IstioSemantics, ASubsetsPolicyOverridesForThatSubsetOnly) {
  const Translated t = Translate(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 3}
  subsets:
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: LEAST_REQUEST}
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r]
  http:
  - route:
    - destination: {host: r, subset: v2}
      weight: 50
    - destination: {host: r, subset: v1}
      weight: 50
)");
  const auto& subsets = t.TopConfig().at("subsets").array_value();
  ASSERT_EQ(subsets.size(), 2u) << t.text;
  auto leaf = [](const Json& subset) {
    // outlier -> locality -> leaf
    const Json* p = &subset.object_value().at("childPolicy").array_value()[0];
    for (int depth = 0; depth < 2; ++depth) {
      p = &p->object_value().begin()->second.object_value().at("childPolicy").array_value()[0];
    }
    return p->object_value().begin()->first;
  };
  EXPECT_EQ(leaf(subsets[0]), "lbkit_least_request") << t.text;
  EXPECT_EQ(leaf(subsets[1]), "lbkit_round_robin") << t.text;
}

// Routes as Envoy builds them from Istio's pilot: an abort needs its
// percentage; a route matching by method alone keeps its own retries (none
// with attempts: 0); uri prefix "/" and a content-type: application/grpc
// match take every call, so later routes are never reached; a
// directResponse fails its calls with the gRPC code of its status.
TEST(IstioSemantics, RoutesFollowEnvoysRouteTable) {
  const Translated t = Translate(std::string(kReviewsSubsets) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {abort: {httpStatus: 503}}
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {exact: /reviews.Reviews/Delete}}]
    retries: {attempts: 0}
    route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {prefix: /reviews.Admin/}}]
    directResponse: {status: 403}
  - match: [{headers: {content-type: {prefix: application/grpc}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - route: [{destination: {host: reviews, subset: v1}}]
)");
  ASSERT_EQ(t.TopPolicy(), "lbkit_routes") << t.text;
  const auto& routes = t.TopConfig().at("routes").array_value();
  ASSERT_EQ(routes.size(), 4u) << t.text;  // the last is never reached
  EXPECT_EQ(routes[0].object_value().count("abort"), 0u) << t.text;  // no percentage: none
  EXPECT_TRUE(t.Warned("spec.http[0].fault.abort: aborts no call"));
  EXPECT_EQ(routes[2].object_value().at("abort").object_value().at("code").string_value(),
            "PERMISSION_DENIED");
  EXPECT_EQ(routes[3].object_value().count("match"), 0u) << t.text;  // every gRPC call
  EXPECT_TRUE(t.Warned("spec.http[4]: never reached"));
  // Delete: no retries; everything else: Istio's default.
  EXPECT_TRUE(t.Mentions(R"({"name":[{"method":"Delete","service":"reviews.Reviews"}]})"))
      << t.text;
  EXPECT_TRUE(t.Mentions(R"("name":[{}],"retryPolicy":{)")) << t.text;
}

// A VirtualService bound to gateways only is not the mesh's route.
// A route that matches a method path and a header is not a per-method
// route: its retries and timeout must not become the methodConfig of every
// call to the method (a call without the header takes the next route).
// Found by a second reading of translate.cc: the header check ran after the
// headers had been moved away, so it never saw them.
TEST(IstioSemantics, AHeaderConditionKeepsARoutesRetriesOffOtherCalls) {
  const Translated t = Translate(std::string(kReviewsSubsets) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /reviews.Reviews/}
      headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
    retries: {attempts: 7, perTryTimeout: 2s}
    timeout: 9s
  - route:
    - destination: {host: reviews, subset: v1}
)");
  EXPECT_FALSE(t.Mentions("\"maxAttempts\":\"7\"")) << t.text;
  EXPECT_FALSE(t.Mentions("\"maxAttempts\":7")) << t.text;
  EXPECT_FALSE(t.Mentions("\"timeout\":\"9s\"")) << t.text;
  EXPECT_FALSE(t.Mentions("reviews.Reviews\"}")) << t.text;
  // The catch-all route's (Istio's default) retries apply to every call.
  const Json::Object* retry = t.RetryPolicy();
  ASSERT_NE(retry, nullptr) << t.text;
  EXPECT_EQ(retry->at("maxAttempts").string_value(), "3") << t.text;
}

TEST(IstioSemantics, GatewayOnlyVirtualServicesDoNotApply) {
  const Translated t = Translate(std::string(kReviewsSubsets) + R"(---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
      weight: 100
    timeout: 1s
)");
  EXPECT_EQ(t.TopPolicy(), "lbkit_least_request") << t.text;
  EXPECT_FALSE(t.Mentions("timeout")) << t.text;
  EXPECT_TRUE(t.Warned("skipped: the VirtualService applies to gateways only"));
}

}  // namespace
}  // namespace lbkit
