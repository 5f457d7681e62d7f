// lbkit_locality end to end: 7 greeter servers in three localities behind
// lbkit-file (zone a: 3, zone b: 2, another region: 2), the client in zone a.
// All healthy: everything in zone a; one zone-a backend NOT_SERVING: Envoy's
// spillover share to zone b; zone a killed: failover to zone b without a
// failed call (retry policy), timed; zone a back: traffic returns.
// `distribute` 80/20 splits as configured.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <ostream>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/temp_files.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Clock = std::chrono::steady_clock;

struct Member {
  std::unique_ptr<BackendProcess> process;
  std::string region, zone;
};

class Fleet {
 public:
  Fleet() {
    for (auto [prefix, region, zone, n] : {std::tuple{"a", "r1", "a", 3}, {"b", "r1", "b", 2},
                                          {"c", "r2", "c", 2}}) {
      for (int i = 0; i < n; ++i) {
        members_.push_back({BackendProcess::Start(absl::StrCat(prefix, "-", i)), region, zone});
      }
    }
    testing::WriteAtomically(path(), EndpointsJson());
  }

  std::string path() const { return dir_.path() + "/endpoints.json"; }
  std::string target() const { return "lbkit-file://" + path(); }
  std::vector<Member>& members() { return members_; }
  BackendProcess& get(const std::string& name) {
    for (auto& m : members_) {
      if (m.process->name() == name) return *m.process;
    }
    abort();
  }
  // Restarts a killed backend on its old port (the endpoints file is
  // unchanged, so the channel reconnects to it).
  void Restart(const std::string& name) {
    for (auto& m : members_) {
      if (m.process->name() == name) {
        const int port = m.process->port();
        m.process = BackendProcess::Start(name, {absl::StrCat("--port=", port)});
      }
    }
  }

 private:
  std::string EndpointsJson() const {
    std::vector<std::string> entries;
    for (const Member& m : members_) {
      entries.push_back(absl::StrCat(R"({"address": ")", m.process->address(),
                                     R"(", "locality": {"region": ")", m.region,
                                     R"(", "zone": ")", m.zone, R"("}})"));
    }
    return absl::StrCat(R"({"endpoints": [)", absl::StrJoin(entries, ", "), "]}\n");
  }

  testing::TempDir dir_;
  std::vector<Member> members_;
};

std::map<char, double> ZoneShares(const testing::Tally& tally) {
  std::map<char, double> shares;
  const int total = tally.ok() + tally.failed();
  for (const auto& [backend, count] : tally.per_backend) {
    shares[backend[0]] += 100.0 * count / total;
  }
  return shares;
}

std::shared_ptr<grpc::Channel> LocalityChannel(const std::string& target,
                                               const std::string& policy_config) {
  grpc::ChannelArguments args;
  // Quick reconnection to restarted backends.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  return testing::MakeChannel(
      target,
      absl::StrCat(R"({"loadBalancingConfig": [{"lbkit_locality": )", policy_config, R"(}],
        "healthCheckConfig": {"serviceName": ""},
        "methodConfig": [{"name": [{"service": "lbkit.examples.Greeter"}],
          "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.02s", "maxBackoff": "0.2s",
                          "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})"),
      args);
}

TEST(LocalityE2E, SpillsFailsOverAndReturns) {
  Fleet fleet;
  auto channel = LocalityChannel(fleet.target(), R"({"locality": "r1/a"})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"a-0", "a-1", "a-2"}));

  // All healthy: zone a only.
  testing::Tally tally = testing::CallMany(*stub, 1500);
  EXPECT_EQ(ZoneShares(tally)['a'], 100.0) << tally.first_error;
  EXPECT_EQ(tally.per_backend.size(), 3u);

  // One of zone a's three NOT_SERVING: health min(100, 140 x 2/3) = 93, so
  // 7% spills to zone b (same region), none to the other region.
  fleet.get("a-0").Signal(SIGUSR1);
  ASSERT_TRUE(testing::CallUntil(*stub, 100, [](const testing::Tally& t) {
    return t.per_backend.count("a-0") == 0 && t.failed() == 0;
  }));
  tally = testing::CallMany(*stub, 10000);
  auto shares = ZoneShares(tally);
  printf("locality: one of 3 local backends NOT_SERVING: zone a %.2f%%, zone b %.2f%%, "
         "region r2 %.2f%% (Envoy's formula: 93/7/0)\n",
         shares['a'], shares['b'], shares['c']);
  EXPECT_NEAR(shares['b'], 7.0, 3.0);
  EXPECT_EQ(shares['c'], 0.0);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  fleet.get("a-0").Signal(SIGUSR2);
  ASSERT_TRUE(testing::CallUntil(*stub, 100, [](const testing::Tally& t) {
    return ZoneShares(t)['a'] == 100.0;
  }));

  // Zone a killed while calls flow: they move to zone b.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> first_b_ns{0};
  std::atomic<int> failed_after_kill{0}, calls_after_kill{0};
  std::atomic<bool> killed{false};
  std::string first_failure;
  std::thread caller([&] {
    const auto end = Clock::now() + std::chrono::seconds(30);
    while (!stop && Clock::now() < end) {
      testing::CallResult r = testing::CallOnce(*stub, 5000);
      if (!killed) continue;
      ++calls_after_kill;
      if (!r.status.ok()) {
        if (failed_after_kill++ == 0) first_failure = r.status.error_message();
      } else if (r.backend[0] == 'b' && first_b_ns == 0) {
        first_b_ns = Clock::now().time_since_epoch().count();
      }
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int64_t kill_ns = Clock::now().time_since_epoch().count();
  killed = true;
  for (const char* name : {"a-0", "a-1", "a-2"}) fleet.get(name).Kill();
  while (first_b_ns == 0 && Clock::now().time_since_epoch().count() - kill_ns < 20e9) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  caller.join();
  ASSERT_NE(first_b_ns, 0) << "no call reached zone b after zone a was killed";
  printf("locality: zone a killed: first success in zone b after %.1f ms; %d of %d calls "
         "failed meanwhile (retry policy on UNAVAILABLE)\n",
         (first_b_ns - kill_ns) / 1e6, failed_after_kill.load(), calls_after_kill.load());
  EXPECT_EQ(failed_after_kill, 0) << first_failure;
  tally = testing::CallMany(*stub, 500);
  EXPECT_EQ(ZoneShares(tally)['b'], 100.0) << tally.first_error;

  // Zone a back on its ports: traffic returns.
  for (const char* name : {"a-0", "a-1", "a-2"}) fleet.Restart(name);
  EXPECT_TRUE(testing::CallUntil(*stub, 200, [](const testing::Tally& t) {
    return ZoneShares(t)['a'] == 100.0 && t.per_backend.size() == 3;
  }));
}

TEST(LocalityE2E, DistributeSplitsEightyTwenty) {
  Fleet fleet;
  auto channel = LocalityChannel(fleet.target(), R"({"locality": "r1/a", "distribute": [
      {"from": "r1/a/*", "to": {"r1/a/*": 80, "r1/b/*": 20}}]})");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"a-0", "a-1", "a-2", "b-0", "b-1"}));
  const testing::Tally tally = testing::CallMany(*stub, 10000);
  const auto shares = ZoneShares(tally);
  printf("locality: distribute 80/20: zone a %.2f%%, zone b %.2f%%, region r2 %.2f%%\n",
         shares.count('a') ? shares.at('a') : 0.0, shares.count('b') ? shares.at('b') : 0.0,
         shares.count('c') ? shares.at('c') : 0.0);
  EXPECT_NEAR(shares.at('a'), 80.0, 2.0);
  EXPECT_NEAR(shares.at('b'), 20.0, 2.0);
  EXPECT_EQ(shares.count('c'), 0u);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
}


// A locality whose child cannot pick passes its whole share on, whatever
// sits between lbkit_locality and the endpoints. Zone a (the client's) has
// one backend, zone b two; a-0 turns NOT_SERVING (seen by a polled health
// check, so its connection stays up) or fails every call (ejected by
// lbkit_outlier_ejection above or below the locality policy). Before the
// fix, the level kept its share because its connection was READY, its
// child had nothing to pick, and every call queued until its deadline.
struct NestingCase {
  const char* name;
  const char* config;  // the loadBalancingConfig list
  bool not_serving;    // else: a-0 fails every call with INTERNAL
};

void PrintTo(const NestingCase& c, std::ostream* os) { *os << c.name; }

class LocalityNesting : public ::testing::TestWithParam<NestingCase> {};

TEST_P(LocalityNesting, ALocalityThatCannotPickPassesItsShareOn) {
  const NestingCase& c = GetParam();
  testing::TempDir dir;
  std::vector<std::unique_ptr<BackendProcess>> backends;
  std::vector<std::string> fault;
  if (!c.not_serving) fault = {"--error_rate=1", "--error_code=INTERNAL"};
  backends.push_back(BackendProcess::Start("a-0", fault));
  backends.push_back(BackendProcess::Start("b-0"));
  backends.push_back(BackendProcess::Start("b-1"));
  std::vector<std::string> entries;
  for (const auto& b : backends) {
    entries.push_back(absl::StrCat(R"({"address": ")", b->address(),
                                   R"(", "locality": {"region": "r1", "zone": ")",
                                   b->name().substr(0, 1), R"("}})"));
  }
  const std::string path = dir.path() + "/endpoints.json";
  testing::WriteAtomically(path, absl::StrCat(R"({"endpoints": [)",
                                              absl::StrJoin(entries, ", "), "]}\n"));
  auto channel = testing::MakeChannel(
      "lbkit-file://" + path, absl::StrCat(R"({"loadBalancingConfig": )", c.config, "}"));
  auto stub = examples::Greeter::NewStub(channel);
  if (c.not_serving) {
    ASSERT_TRUE(testing::WaitForBackends(*stub, {"a-0"}));
    backends[0]->Signal(SIGUSR1);
  }
  // Out of rotation once a round goes only to zone b (the failing backend
  // fails a few calls before it is ejected).
  ASSERT_TRUE(testing::CallUntil(
      *stub, 20,
      [](const testing::Tally& t) { return t.per_backend.count("a-0") == 0 && t.failed() == 0; },
      std::chrono::seconds(30)))
      << c.name << ": calls never left zone a";
  testing::Tally tally = testing::CallMany(*stub, 300);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_EQ(tally.per_backend["b-0"] + tally.per_backend["b-1"], 300);
}

INSTANTIATE_TEST_SUITE_P(
    Nestings, LocalityNesting,
    ::testing::Values(
        NestingCase{"LocalityPollLeafNotServing",
                    R"([{"lbkit_locality": {"locality": "r1/a", "childPolicy": )"
                    R"([{"lbkit_round_robin": {"healthCheck": {"mode": "poll", "interval": "0.1s",
                        "timeout": "0.5s", "unhealthyThreshold": 2, "healthyThreshold": 1}}}]}}])",
                    true},
        NestingCase{"LocalityOutlierLeafFailing",
                    R"([{"lbkit_locality": {"locality": "r1/a", "childPolicy": [
                        {"lbkit_outlier_ejection": {"consecutive5xxErrors": 3,
                          "baseEjectionTime": "60s"}}]}}])",
                    false},
        NestingCase{"OutlierLocalityLeafFailing",
                    R"([{"lbkit_outlier_ejection": {"consecutive5xxErrors": 3,
                        "maxEjectionPercent": 50, "baseEjectionTime": "60s",
                        "childPolicy": [{"lbkit_locality": {"locality": "r1/a"}}]}}])",
                    false},
        NestingCase{"LocalityOutlierPollLeafNotServing",
                    R"([{"lbkit_locality": {"locality": "r1/a", "childPolicy": [
                        {"lbkit_outlier_ejection": {"childPolicy": [
                          {"lbkit_round_robin": {"healthCheck": {"mode": "poll", "interval": "0.1s",
                          "timeout": "0.5s", "unhealthyThreshold": 2, "healthyThreshold": 1}}}]}}]}}])",
                    true},
        NestingCase{"OutlierLocalityPollLeafNotServing",
                    R"([{"lbkit_outlier_ejection": {"childPolicy": [{"lbkit_locality": {
                        "locality": "r1/a", "childPolicy": [
                          {"lbkit_round_robin": {"healthCheck": {"mode": "poll", "interval": "0.1s",
                          "timeout": "0.5s", "unhealthyThreshold": 2, "healthyThreshold": 1}}}]}}]}}])",
                    true}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace lbkit
