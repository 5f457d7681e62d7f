// lbkit::DumpState(), PrometheusText() and the admin server end to end: the
// counts in the dump equal what the servers answered, and a scrape with curl
// returns the metrics.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <signal.h>
#include <stdio.h>

#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lbkit/stats.h"
#include "src/core/lib/json/json.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Backends = std::vector<std::unique_ptr<BackendProcess>>;

// Per endpoint address: {"OK" calls, picks, ...} of the policy with `target`.
struct EndpointCounts {
  uint64_t picks = 0;
  std::map<std::string, uint64_t> by_code;
};

std::map<std::string, EndpointCounts> Counts(const std::string& target,
                                             const std::string& policy) {
  std::map<std::string, EndpointCounts> out;
  auto json = grpc_core::Json::Parse(DumpState());
  EXPECT_TRUE(json.ok()) << json.status();
  if (!json.ok()) return out;
  for (const auto& p : json->object_value().at("policies").array_value()) {
    const auto& po = p.object_value();
    if (po.at("target").string_value() != target || po.at("policy").string_value() != policy) {
      continue;
    }
    for (const auto& e : po.at("endpoints").array_value()) {
      const auto& eo = e.object_value();
      EndpointCounts& c = out[eo.at("address").string_value()];
      c.picks += std::stoull(eo.at("picks").string_value());
      for (const auto& [code, n] : eo.at("by_code").object_value()) {
        c.by_code[code] += std::stoull(n.string_value());
      }
    }
  }
  return out;
}

TEST(StatsE2E, TheDumpCountsWhatTheServersAnswered) {
  Backends backends;
  for (int i = 0; i < 3; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("st-", i)));
  backends.push_back(BackendProcess::Start("st-bad", {"--error_rate=0.5", "--error_code=UNAVAILABLE"}));
  const std::string target = testing::Ipv4Target(backends);
  auto channel = testing::MakeChannel(target, testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"st-0", "st-1", "st-2", "st-bad"}));

  const auto before = Counts(target, "lbkit_round_robin");
  ASSERT_EQ(before.size(), 4u) << DumpState();
  const testing::Tally tally = testing::CallMany(*stub, 400);
  const auto after = Counts(target, "lbkit_round_robin");
  for (const auto& b : backends) {
    const EndpointCounts& a = after.at(b->address());
    const EndpointCounts& z = before.at(b->address());
    const uint64_t ok = a.by_code.count("OK") ? a.by_code.at("OK") : 0;
    const uint64_t ok0 = z.by_code.count("OK") ? z.by_code.at("OK") : 0;
    auto it = tally.per_backend.find(b->name());
    EXPECT_EQ(ok - ok0, it == tally.per_backend.end() ? 0u : static_cast<uint64_t>(it->second))
        << b->name();
    EXPECT_EQ(a.picks - z.picks, 100u) << b->name();  // round robin: 400 / 4
  }
  // The failing backend's errors are all there, by code.
  const auto& bad = after.at(backends[3]->address());
  const auto& bad0 = before.at(backends[3]->address());
  const uint64_t unavailable = bad.by_code.count("UNAVAILABLE") ? bad.by_code.at("UNAVAILABLE") : 0;
  const uint64_t unavailable0 = bad0.by_code.count("UNAVAILABLE") ? bad0.by_code.at("UNAVAILABLE") : 0;
  EXPECT_EQ(unavailable - unavailable0, static_cast<uint64_t>(tally.failed()));
  EXPECT_GT(tally.failed(), 20);
}

TEST(StatsE2E, TheAdminServerServesMetricsAndState) {
  Backends backends;
  backends.push_back(BackendProcess::Start("adm-0"));
  auto channel =
      testing::MakeChannel(testing::Ipv4Target(backends), testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"adm-0"}));
  testing::CallMany(*stub, 10);

  auto admin = AdminServer::Start(0);
  ASSERT_TRUE(admin.ok()) << admin.status();
  ASSERT_GT((*admin)->port(), 0);
  auto curl = [&](const std::string& path) {
    const std::string cmd = absl::StrCat("curl -s -m 10 -w '\\n%{http_code}' http://127.0.0.1:",
                                         (*admin)->port(), path);
    std::string out;
    FILE* pipe = popen(cmd.c_str(), "r");
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
    return out;
  };
  const std::string metrics = curl("/metrics");
  EXPECT_TRUE(absl::EndsWith(metrics, "\n200")) << metrics.substr(metrics.size() > 200 ? metrics.size() - 200 : 0);
  EXPECT_TRUE(absl::StrContains(metrics, "lbkit_endpoint_requests_total{"));
  EXPECT_TRUE(absl::StrContains(metrics, absl::StrCat("endpoint=\"", backends[0]->address(), "\"")));
  const std::string state = curl("/lbkit/state");
  ASSERT_TRUE(absl::EndsWith(state, "\n200"));
  EXPECT_TRUE(grpc_core::Json::Parse(state.substr(0, state.size() - 4)).ok());
  EXPECT_TRUE(absl::EndsWith(curl("/nothing"), "\n404"));
  // A port in use is an error, not a crash.
  auto second = AdminServer::Start((*admin)->port());
  EXPECT_FALSE(second.ok());
}

}  // namespace
}  // namespace lbkit
