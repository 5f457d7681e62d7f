// lbkit-istio's translation against golden files written for this project
// (tests/istio/golden: NAME.yaml in, NAME.json expected, NAME.warnings the
// expected warnings, one per line, none when absent), and every produced
// config accepted by a real channel's service-config parser.

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "lbkit/channel.h"
#include "lbkit/istio.h"
#include "src/core/lib/json/json.h"

namespace lbkit {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> GoldenNames() {
  std::vector<std::string> names;
  DIR* dir = opendir(LBKIT_ISTIO_GOLDEN_DIR);
  if (dir == nullptr) return names;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (absl::EndsWith(name, ".yaml")) names.push_back(name.substr(0, name.size() - 5));
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string Canonical(const std::string& json) {
  auto parsed = grpc_core::Json::Parse(json);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << ": " << json;
  return parsed.ok() ? parsed->Dump() : "";
}

TEST(IstioGolden, EveryCaseTranslatesAsExpected) {
  const std::vector<std::string> names = GoldenNames();
  ASSERT_GE(names.size(), 10u);
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const std::string base = std::string(LBKIT_ISTIO_GOLDEN_DIR) + "/" + name;
    auto result = TranslateIstio(Read(base + ".yaml"));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(Canonical(result->service_config), Canonical(Read(base + ".json")));
    std::vector<std::string> expected_warnings;
    const std::string warnings = Read(base + ".warnings");
    for (absl::string_view line : absl::StrSplit(warnings, '\n', absl::SkipEmpty())) {
      expected_warnings.emplace_back(line);
    }
    EXPECT_EQ(result->warnings, expected_warnings);
    // A real channel takes it.
    EXPECT_TRUE(ValidateServiceConfig(result->service_config).ok())
        << ValidateServiceConfig(result->service_config) << "\n" << result->service_config;
  }
}

// Real documents from public sources (tests/istio/corpus, each headed by
// its source; SOURCES.md lists them): NAME.yaml in, and either NAME.json +
// NAME.warnings, or NAME.error for input Istio itself would not accept or
// that routes to a subset no rule defines. A "# lbkit-istio --host=H" line
// names the host when the file covers several. Each expected output was
// read against what Istio's pilot and Envoy do with the document (a second
// reader, file by file, with Istio's source at hand); every difference
// found became a translator fix and a test in semantics_test.cc before the
// files were written.
TEST(IstioCorpus, RealDocumentsTranslateAsIstioBehaves) {
  const std::string dir = LBKIT_ISTIO_CORPUS_DIR;
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (absl::EndsWith(name, ".yaml")) names.push_back(name.substr(0, name.size() - 5));
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  ASSERT_GE(names.size(), 30u);
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const std::string base = dir + "/" + name;
    const std::string yaml = Read(base + ".yaml");
    std::string host;
    for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
      if (absl::ConsumePrefix(&line, "# lbkit-istio --host=")) host = std::string(line);
    }
    auto result = TranslateIstio(yaml, host);
    const std::string error = Read(base + ".error");
    if (!error.empty()) {
      ASSERT_FALSE(result.ok()) << result->service_config;
      EXPECT_EQ(std::string(result.status().message()), absl::StripTrailingAsciiWhitespace(error));
      continue;
    }
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(Canonical(result->service_config), Canonical(Read(base + ".json")));
    std::vector<std::string> expected_warnings;
    for (absl::string_view line : absl::StrSplit(Read(base + ".warnings"), '\n', absl::SkipEmpty())) {
      expected_warnings.emplace_back(line);
    }
    EXPECT_EQ(result->warnings, expected_warnings);
    EXPECT_TRUE(ValidateServiceConfig(result->service_config).ok());
  }
}

TEST(IstioErrors, NameTheDocumentAndThePath) {
  struct Case {
    const char* yaml;
    const char* message;
    const char* host = "";
  };
  const Case cases[] = {
      {"kind: DestinationRule\nspec: [unclosed\n",
       "malformed YAML at line 3, column 1: end of sequence flow not found"},
      // Other kinds are skipped (with a warning); nothing is left.
      {"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {}\n",
       "no DestinationRule or VirtualService in the input"},
      {"apiVersion: networking.istio.io/v2\nkind: DestinationRule\nspec: {host: a}\n",
       "document 1 (DestinationRule): apiVersion \"networking.istio.io/v2\" is not "
       "networking.istio.io/v1beta1 or v1"},
      {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\n"
       "spec:\n  host: a\n  trafficPolicy:\n    loadBalancer: {simple: FASTEST}\n",
       "document 1 (DestinationRule a): spec.trafficPolicy.loadBalancer.simple: \"FASTEST\" is "
       "not ROUND_ROBIN, LEAST_REQUEST, LEAST_CONN, RANDOM or PASSTHROUGH"},
      {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\n"
       "spec:\n  host: a\n  trafficPolicy:\n    outlierDetection: {interval: soon}\n",
       "document 1 (DestinationRule a): spec.trafficPolicy.outlierDetection.interval: \"soon\" is "
       "not a duration (e.g. 10s, 1.5s, 100ms)"},
      {"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\n"
       "spec: {hosts: [a]}\n",
       "no DestinationRule or VirtualService for host \"b\"", "b"},
      {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\n"
       "spec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n"
       "        distribute:\n        - to: {\"r/*\": 100}\n",
       "document 1 (DestinationRule a): spec.trafficPolicy.loadBalancer.localityLbSetting."
       "distribute[0].from: missing"},
      // Carried over as written, rejected by the policy: an error now, not
      // a config that fails every RPC (found by the fuzzer).
      {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\n"
       "spec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
       "        httpHeaderName: x\n        maglev: {tableSize: 65535}\n",
       "document 1 (DestinationRule a): translates to a service config lbkit rejects: errors "
       "validating service config: [field:loadBalancingConfig error:errors validating "
       "lbkit_maglev LB policy config: [field:tableSize error:must be a prime number (e.g. "
       "65537, 131071, 5000011)]]"},
      // yaml-cpp 0.7's LoadAll never returns on these (found by the fuzzer).
      {",", "no DestinationRule or VirtualService in the input"},
      {"- a\n,\n", "document 1: not a YAML mapping"},
      {"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {host: a}\n---\n,\n"
       "---\n- x\n",
       "document 3: not a YAML mapping"},
  };
  for (const Case& c : cases) {
    auto result = TranslateIstio(c.yaml, c.host);
    ASSERT_FALSE(result.ok()) << c.yaml;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(result.status().message()), c.message) << c.yaml;
  }
}

TEST(IstioHost, PicksTheRuleForTheHost) {
  const std::string yaml = Read(std::string(LBKIT_ISTIO_GOLDEN_DIR) + "/01_round_robin.yaml") +
                           "---\n" +
                           Read(std::string(LBKIT_ISTIO_GOLDEN_DIR) + "/04_maglev.yaml");
  auto sessions = TranslateIstio(yaml, "sessions");
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  EXPECT_TRUE(absl::StrContains(sessions->service_config, "lbkit_maglev"));
  EXPECT_EQ(sessions->warnings.size(), 1u);  // the other rule, ignored
  EXPECT_FALSE(TranslateIstio(yaml, "nope").ok());
}

}  // namespace
}  // namespace lbkit
