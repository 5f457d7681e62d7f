// The example client as users and the benchmarks run it: greeter_client
// --json against greeter_server processes, its report parsed.

#include <algorithm>
#include <map>
#include <memory>
#include <stdio.h>
#include <sys/wait.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/json/json.h"
#include "tests/support/backend_process.h"
#include "tests/support/client_process.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using testing::ClientRun;
using testing::Quote;
using testing::RunClient;

TEST(GreeterClientE2E, RoundRobinOverThreeBackendsIsEvenInTheJsonReport) {
  std::vector<std::unique_ptr<BackendProcess>> backends;
  for (int i = 0; i < 3; ++i) {
    backends.push_back(BackendProcess::Start(absl::StrCat("client-", i)));
  }
  ClientRun run = RunClient(absl::StrCat(
      "--target=", testing::Ipv4Target(backends),
      " --service_config=",
      Quote(R"({"loadBalancingConfig":[{"lbkit_round_robin":{}}]})"),
      " --rpcs=3000 --concurrency=4 --hash_keys=5 --json"));
  ASSERT_EQ(run.exit_code, 0) << run.out;
  auto json = grpc_core::Json::Parse(run.out);
  ASSERT_TRUE(json.ok()) << json.status() << ": " << run.out;
  const auto& report = json->object_value();
  EXPECT_EQ(report.at("rpcs").string_value(), "3000");
  EXPECT_EQ(report.at("ok").string_value(), "3000");
  EXPECT_TRUE(report.at("errors").object_value().empty());
  const auto& per_backend = report.at("per_backend").object_value();
  ASSERT_EQ(per_backend.size(), 3u) << run.out;
  for (const auto& [name, count] : per_backend) {
    EXPECT_NEAR(std::stoi(count.string_value()), 1000, 30) << name;
  }
  for (const char* key : {"qps", "latency_us", "cpu_us"}) {
    EXPECT_TRUE(report.count(key)) << key;
  }
  // Round robin ignores the key: each of the 5 keys reaches all 3 backends.
  const auto& keys = report.at("key_to_backends").object_value();
  ASSERT_EQ(keys.size(), 5u);
  for (const auto& [key, list] : keys) EXPECT_EQ(list.array_value().size(), 3u) << key;
}

TEST(GreeterClientE2E, MalformedServiceConfigExitsWithTheFieldPath) {
  ClientRun run = RunClient(
      "--target=ipv4:127.0.0.1:1 --service_config=" +
      Quote(R"({"loadBalancingConfig":[{"lbkit_round_robin":[]}]})") + " 2>&1");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("field:loadBalancingConfig"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace lbkit
