// lbkit_ring_hash and lbkit_maglev end to end, through greeter_client
// --hash_keys=50 (request i carries x-user-id: user-(i mod 50)) over 5
// backends: each key on exactly one backend; a killed backend's keys, and
// only its keys, move; when it returns on the same address they come back.

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "grpc_internal/abi_guard.h"
#include "src/core/lib/json/json.h"
#include "tests/support/backend_process.h"
#include "tests/support/client_process.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lbkit {
namespace {

using testing::BackendProcess;

using KeyMap = std::map<std::string, std::vector<std::string>>;

KeyMap KeysToBackends(const std::string& target, const std::string& policy_json,
                      int expect_backends) {
  testing::ClientRun run = testing::RunClient(absl::StrCat(
      "--target=", target, " --service_config=",
      testing::Quote(absl::StrCat(R"({"loadBalancingConfig":[)", policy_json, "]}")),
      " --rpcs=1000 --concurrency=4 --hash_keys=50 --json --expect_backends=",
      expect_backends));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  KeyMap map;
  auto json = grpc_core::Json::Parse(run.out);
  EXPECT_TRUE(json.ok()) << run.out;
  if (!json.ok()) return map;
  EXPECT_EQ(json->object_value().at("ok").string_value(), "1000") << run.out;
  for (const auto& [key, list] : json->object_value().at("key_to_backends").object_value()) {
    for (const auto& b : list.array_value()) map[key].push_back(b.string_value());
  }
  return map;
}

class HashPoliciesE2E : public ::testing::TestWithParam<const char*> {};

TEST_P(HashPoliciesE2E, KeysStayMoveOnlyFromAKilledBackendAndComeBack) {
  std::vector<std::unique_ptr<BackendProcess>> backends;
  std::vector<std::string> addresses;
  for (int i = 0; i < 5; ++i) {
    backends.push_back(BackendProcess::Start(absl::StrCat("hash-", i)));
    addresses.push_back(backends.back()->address());
  }
  const std::string target = "lbkit-static:///" + absl::StrJoin(addresses, ",");
  const std::string policy = GetParam();

  KeyMap before = KeysToBackends(target, policy, 5);
  ASSERT_EQ(before.size(), 50u);
  std::set<std::string> used;
  for (const auto& [key, list] : before) {
    ASSERT_EQ(list.size(), 1u) << key << " reached several backends";
    used.insert(list[0]);
  }
  EXPECT_GE(used.size(), 4u);  // 50 keys spread over the 5 backends

  // Kill the backend that owns the first key.
  const std::string victim = before.begin()->second[0];
  const int victim_index = victim.back() - '0';
  const int port = backends[victim_index]->port();
  backends[victim_index]->Kill();
  KeyMap during = KeysToBackends(target, policy, 4);
  for (const auto& [key, list] : during) {
    ASSERT_EQ(list.size(), 1u) << key;
    if (before[key][0] == victim) {
      EXPECT_NE(list[0], victim) << key;
    } else {
      EXPECT_EQ(list[0], before[key][0]) << key << " moved although its backend is up";
    }
  }

  // The same backend returns on the same address: its keys come back.
  backends[victim_index] =
      BackendProcess::Start(victim, {absl::StrCat("--port=", port)});
  ASSERT_EQ(backends[victim_index]->port(), port);
  KeyMap after = KeysToBackends(target, policy, 5);
  for (const auto& [key, list] : after) {
    ASSERT_EQ(list.size(), 1u) << key;
    EXPECT_EQ(list[0], before[key][0]) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Policies, HashPoliciesE2E,
    ::testing::Values(R"({"lbkit_ring_hash":{"requestHashHeader":"x-user-id"}})",
                      R"({"lbkit_maglev":{"requestHashHeader":"x-user-id"}})"),
    [](const auto& info) {
      return std::string(info.index == 0 ? "lbkit_ring_hash" : "lbkit_maglev");
    });

}  // namespace
}  // namespace lbkit
