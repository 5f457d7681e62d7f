// Which of the cluster's Istio rules apply to a client calling a Service
// (SelectIstioRules), by Istio's lookup rules: host names read in the
// rule's namespace, exportTo, and the DestinationRule lookup path (the
// client's namespace, the Service's, the root namespace) as istio.io's
// "Destination Rule" reference and "Configuration scoping" describe them.

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lbkit/istio.h"
#include "resolvers/k8s/istio_rules.h"

namespace lbkit::resolvers::k8s {
namespace {

using nlohmann::json;

json Rule(const std::string& kind, const std::string& ns, const std::string& name,
          const std::string& host, const std::string& created, json export_to = nullptr) {
  json rule = {{"apiVersion", "networking.istio.io/v1"},
               {"kind", kind},
               {"metadata", {{"name", name}, {"namespace", ns}, {"creationTimestamp", created},
                             {"uid", ns + "-" + name}, {"resourceVersion", "1"}}}};
  if (kind == "DestinationRule") {
    rule["spec"] = {{"host", host}};
  } else {
    rule["spec"] = {{"hosts", {host}}};
  }
  if (!export_to.is_null()) rule["spec"]["exportTo"] = export_to;
  return rule;
}

RuleQuery Query() {
  RuleQuery query;
  query.client_namespace = "frontend";
  query.service_namespace = "backend";
  query.service = "reviews";
  return query;
}

TEST(IstioRules, HostsAreReadInTheRulesNamespace) {
  std::vector<json> drs = {
      Rule("DestinationRule", "backend", "short", "reviews", "2024-01-01T00:00:00Z"),
      // "reviews" in frontend is reviews.frontend: another Service.
      Rule("DestinationRule", "frontend", "elsewhere", "reviews", "2024-01-01T00:00:00Z"),
  };
  SelectedRules picked = SelectIstioRules(drs, {}, Query());
  ASSERT_EQ(picked.names, std::vector<std::string>{"DestinationRule backend/short"});
  drs.push_back(Rule("DestinationRule", "frontend", "fqdn", "reviews.backend.svc.cluster.local",
                     "2024-01-02T00:00:00Z"));
  // The client's namespace comes first on the lookup path.
  picked = SelectIstioRules(drs, {}, Query());
  EXPECT_EQ(picked.names, std::vector<std::string>{"DestinationRule frontend/fqdn"});
}

TEST(IstioRules, ExportToHidesRulesFromOtherNamespaces) {
  std::vector<json> drs = {Rule("DestinationRule", "backend", "private", "reviews",
                                "2024-01-01T00:00:00Z", json::array({"."}))};
  EXPECT_TRUE(SelectIstioRules(drs, {}, Query()).empty());
  drs[0]["spec"]["exportTo"] = json::array({"frontend"});
  EXPECT_FALSE(SelectIstioRules(drs, {}, Query()).empty());
  drs[0]["spec"]["exportTo"] = json::array({"~"});
  EXPECT_TRUE(SelectIstioRules(drs, {}, Query()).empty());
  drs[0]["spec"]["exportTo"] = json::array({"*"});
  EXPECT_FALSE(SelectIstioRules(drs, {}, Query()).empty());
}

TEST(IstioRules, TheRootNamespaceIsTheLastResortAndRulesMergeOldestFirst) {
  std::vector<json> drs = {
      Rule("DestinationRule", "istio-system", "mesh-wide", "*.svc.cluster.local", "2023-01-01T00:00:00Z"),
  };
  EXPECT_EQ(SelectIstioRules(drs, {}, Query()).names,
            std::vector<std::string>{"DestinationRule istio-system/mesh-wide"});
  drs.push_back(Rule("DestinationRule", "backend", "newer", "reviews", "2024-02-01T00:00:00Z"));
  drs.push_back(Rule("DestinationRule", "backend", "older", "reviews", "2024-01-01T00:00:00Z"));
  EXPECT_EQ(SelectIstioRules(drs, {}, Query()).names,
            (std::vector<std::string>{"DestinationRule backend/older", "DestinationRule backend/newer"}));
}

TEST(IstioRules, VirtualServicesOfTheClientsNamespaceComeFirst) {
  std::vector<json> vss = {
      Rule("VirtualService", "backend", "owner", "reviews", "2023-01-01T00:00:00Z"),
      Rule("VirtualService", "frontend", "local", "reviews.backend.svc.cluster.local",
           "2024-01-01T00:00:00Z"),
      Rule("VirtualService", "backend", "other", "ratings", "2023-01-01T00:00:00Z"),
  };
  SelectedRules picked = SelectIstioRules({}, vss, Query());
  EXPECT_EQ(picked.names, (std::vector<std::string>{"VirtualService frontend/local",
                                                     "VirtualService backend/owner"}));
  // The key changes with a rule's version: that is what triggers a new
  // translation.
  const std::string key = picked.key;
  vss[0]["metadata"]["resourceVersion"] = "2";
  EXPECT_NE(SelectIstioRules({}, vss, Query()).key, key);
}

TEST(IstioRules, TheDocumentTranslates) {
  json dr = Rule("DestinationRule", "backend", "reviews", "reviews", "2024-01-01T00:00:00Z");
  dr["spec"]["subsets"] = json::parse(R"([{"name": "v1", "labels": {"version": "v1"}}])");
  dr["status"] = {{"validationMessages", json::array()}};
  SelectedRules picked = SelectIstioRules({dr}, {}, Query());
  IstioOptions options;
  options.host = "reviews.backend.svc.cluster.local";
  auto translation = TranslateIstio(RulesDocument(picked), options);
  ASSERT_TRUE(translation.ok()) << translation.status();
  EXPECT_NE(translation->service_config.find("lbkit_least_request"), std::string::npos)
      << translation->service_config;
}

}  // namespace
}  // namespace lbkit::resolvers::k8s
