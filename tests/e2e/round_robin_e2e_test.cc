// lbkit_round_robin end to end: greeter_server processes on 127.0.0.1, the
// real gRPC client channel and resolvers.

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <signal.h>

#include <grpcpp/grpcpp.h>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/fake_resolver.h"
#include "tests/support/greeter_calls.h"

#include "absl/strings/str_cat.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using testing::CallMany;
using testing::CallUntil;
using testing::FakeResolver;
using testing::Ipv4Target;
using testing::LbConfig;
using testing::MakeChannel;
using testing::Tally;
using testing::WaitForBackends;

using Backends = std::vector<std::unique_ptr<BackendProcess>>;

Backends StartBackends(int n, const std::string& prefix = "backend") {
  Backends backends;
  for (int i = 0; i < n; ++i) {
    backends.push_back(BackendProcess::Start(absl::StrCat(prefix, "-", i)));
  }
  return backends;
}

std::set<std::string> Names(const Backends& backends) {
  std::set<std::string> names;
  for (auto& b : backends) names.insert(b->name());
  return names;
}

TEST(RoundRobinE2E, SpreadsEvenlyOverThreeBackends) {
  Backends backends = StartBackends(3);
  auto channel = MakeChannel(Ipv4Target(backends), LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(WaitForBackends(*stub, Names(backends)));
  Tally tally = CallMany(*stub, 3000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  ASSERT_EQ(tally.per_backend.size(), 3u);
  for (auto& [name, n] : tally.per_backend) {
    // The acceptance bound is +-2% of even; rotation over a stable READY set
    // is in fact exact.
    EXPECT_NEAR(n, 1000, 30) << name;
  }
}

TEST(RoundRobinE2E, KilledBackendGetsNoMorePicksAndCallsKeepSucceeding) {
  Backends backends = StartBackends(3);
  auto channel = MakeChannel(Ipv4Target(backends), LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(WaitForBackends(*stub, Names(backends)));
  const std::string victim = backends[1]->name();
  backends[1]->Kill();
  // The channel notices the closed connection within moments; calls sent
  // meanwhile may fail. Wait (bounded) for a clean round without the victim.
  ASSERT_TRUE(CallUntil(*stub, 30, [&](const Tally& t) {
    return t.failed() == 0 && t.per_backend.count(victim) == 0;
  }));
  Tally after = CallMany(*stub, 600);
  EXPECT_EQ(after.failed(), 0) << after.first_error;
  EXPECT_EQ(after.per_backend.count(victim), 0u);
  EXPECT_EQ(after.per_backend[backends[0]->name()], 300);
  EXPECT_EQ(after.per_backend[backends[2]->name()], 300);
}

TEST(RoundRobinE2E, NotServingBackendIsExcludedAndReturnsWhenServing) {
  Backends backends = StartBackends(3);
  auto channel = MakeChannel(
      Ipv4Target(backends),
      LbConfig("lbkit_round_robin", R"(,"healthCheckConfig":{"serviceName":""})"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(WaitForBackends(*stub, Names(backends)));
  const std::string flipped = backends[0]->name();
  backends[0]->Signal(SIGUSR1);  // NOT_SERVING
  ASSERT_TRUE(CallUntil(*stub, 30, [&](const Tally& t) {
    return t.per_backend.count(flipped) == 0;
  }));
  Tally excluded = CallMany(*stub, 300);
  EXPECT_EQ(excluded.failed(), 0) << excluded.first_error;
  EXPECT_EQ(excluded.per_backend.count(flipped), 0u);
  EXPECT_EQ(excluded.per_backend.size(), 2u);

  backends[0]->Signal(SIGUSR2);  // SERVING again
  ASSERT_TRUE(CallUntil(*stub, 30, [&](const Tally& t) {
    return t.per_backend.count(flipped) > 0;
  }));
  Tally included = CallMany(*stub, 300);
  EXPECT_EQ(included.failed(), 0) << included.first_error;
  EXPECT_EQ(included.per_backend[flipped], 100);
}

TEST(RoundRobinE2E, AllBackendsNotServingFailsCallsWithUnavailable) {
  Backends backends = StartBackends(2);
  auto channel = MakeChannel(
      Ipv4Target(backends),
      LbConfig("lbkit_round_robin", R"(,"healthCheckConfig":{"serviceName":""})"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(WaitForBackends(*stub, Names(backends)));
  for (auto& b : backends) b->Signal(SIGUSR1);
  ASSERT_TRUE(CallUntil(*stub, 5, [&](const Tally& t) {
    auto it = t.errors.find(grpc::StatusCode::UNAVAILABLE);
    return it != t.errors.end() && it->second == 5;
  }));
  Tally tally = CallMany(*stub, 5);
  EXPECT_NE(tally.first_error.find("lbkit_round_robin: connections to all 2 "
                                   "endpoints failing"),
            std::string::npos)
      << tally.first_error;
}

// The manual resolver changes the address list while the channel runs: the
// new backend gets traffic, the removed one none.
TEST(RoundRobinE2E, ResolverUpdateAddsNewBackendAndDrainsRemovedOne) {
  Backends backends = StartBackends(3);
  FakeResolver resolver;
  auto channel = MakeChannel("fake:///lbkit-test", LbConfig("lbkit_round_robin"),
                             resolver.ChannelArgs());
  auto stub = examples::Greeter::NewStub(channel);
  resolver.SetAddresses({backends[0]->address(), backends[1]->address()});
  ASSERT_TRUE(WaitForBackends(*stub, {backends[0]->name(), backends[1]->name()}));
  Tally before = CallMany(*stub, 200);
  EXPECT_EQ(before.per_backend.size(), 2u);
  EXPECT_EQ(before.per_backend.count(backends[2]->name()), 0u);

  resolver.SetAddresses({backends[1]->address(), backends[2]->address()});
  ASSERT_TRUE(CallUntil(*stub, 20, [&](const Tally& t) {
    return t.per_backend.count(backends[0]->name()) == 0 &&
           t.per_backend.count(backends[2]->name()) > 0;
  }));
  Tally after = CallMany(*stub, 200);
  EXPECT_EQ(after.failed(), 0) << after.first_error;
  EXPECT_EQ(after.per_backend.count(backends[0]->name()), 0u);
  EXPECT_EQ(after.per_backend[backends[1]->name()], 100);
  EXPECT_EQ(after.per_backend[backends[2]->name()], 100);
}

TEST(RoundRobinE2E, EmptyAddressListFailsCallsWithUnavailable) {
  FakeResolver resolver;
  auto channel = MakeChannel("fake:///lbkit-test", LbConfig("lbkit_round_robin"),
                             resolver.ChannelArgs());
  auto stub = examples::Greeter::NewStub(channel);
  resolver.SetAddresses({});
  testing::CallResult r = testing::CallOnce(*stub);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status.error_message().find("empty address list"),
            std::string::npos)
      << r.status.error_message();
}

}  // namespace
}  // namespace lbkit
