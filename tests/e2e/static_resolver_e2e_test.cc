// lbkit-static end to end: endpoints, weights and errors from the target URI.

#include <algorithm>
#include <chrono>
#include <grpcpp/grpcpp.h>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/backend_process.h"
#include "tests/support/fake_names.h"
#include "tests/support/greeter_calls.h"

#include "absl/strings/str_cat.h"

namespace lbkit {
namespace {

using testing::BackendProcess;

TEST(StaticResolverE2E, RoundRobinOverStaticEndpoints) {
  std::vector<std::unique_ptr<BackendProcess>> backends;
  for (int i = 0; i < 3; ++i) {
    backends.push_back(BackendProcess::Start(absl::StrCat("static-", i)));
  }
  const std::string target = absl::StrCat(
      "lbkit-static:///", backends[0]->address(), ";locality=r1/z1,",
      backends[1]->address(), ";weight=2;label.version=v2,", backends[2]->address());
  auto channel = testing::MakeChannel(target, testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"static-0", "static-1", "static-2"}));
  testing::Tally tally = testing::CallMany(*stub, 300);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  // lbkit_round_robin ignores weights.
  for (auto& [name, n] : tally.per_backend) EXPECT_EQ(n, 100) << name;
}

// Idle endpoints share a least-request channel's calls in proportion to
// their weights (calls one at a time, so every pick sees them idle).
TEST(StaticResolverE2E, LeastRequestHonoursWeights) {
  auto heavy = BackendProcess::Start("heavy");
  auto light = BackendProcess::Start("light");
  const std::string target = absl::StrCat("lbkit-static:///", heavy->address(),
                                          ";weight=3,", light->address(), ";weight=1");
  auto channel =
      testing::MakeChannel(target, testing::LbConfig("lbkit_least_request"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"heavy", "light"}));
  testing::Tally tally = testing::CallMany(*stub, 2000);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  // 1,500 expected; binomial sd about 19, so +-100 is over 5 sigma.
  EXPECT_NEAR(tally.per_backend["heavy"], 1500, 100);
}

TEST(StaticResolverE2E, MalformedUriFailsCallsWithTheReason) {
  auto channel = testing::MakeChannel("lbkit-static:///127.0.0.1:1;weight=0",
                                      testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  testing::CallResult r = testing::CallOnce(*stub);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(r.status.error_message(),
            "lbkit-static: endpoint 1 (\"127.0.0.1:1;weight=0\"): weight must be an "
            "integer in [1, 2147483647], got \"0\"");
}

TEST(StaticResolverE2E, TwoSlashesOrNoEndpointFailCallsWithTheReason) {
  struct Case {
    const char* target;
    const char* message;
  };
  for (const Case& c :
       {Case{"lbkit-static://127.0.0.1:1",
             "lbkit-static: the endpoints go after three slashes, "
             "lbkit-static:///127.0.0.1:1; \"127.0.0.1:1\" was read as the URI's authority"},
        Case{"lbkit-static:///", "lbkit-static: no endpoint given "
                                 "(lbkit-static:///HOST:PORT[,HOST:PORT...])"}}) {
    auto channel = testing::MakeChannel(c.target, testing::LbConfig("lbkit_round_robin"));
    auto stub = examples::Greeter::NewStub(channel);
    testing::CallResult r = testing::CallOnce(*stub);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << c.target;
    EXPECT_EQ(r.status.error_message(), c.message) << c.target;
  }
}

// A slow name server must not stall the channel's control plane: names
// are looked up on a thread of their own. GetState(true) starts the
// resolver on the calling thread; before the fix it waited there for the
// lookup (which waits for the test to release it, so it gave up after 20 s
// and counted in timed_out()).
TEST(StaticResolverE2E, ASlowNameLookupDoesNotStallTheChannel) {
  auto backend = BackendProcess::Start("slow-name");
  testing::FakeNames names;
  names.Set("slow.lbkit.test", "127.0.0.1");
  names.Block("slow.lbkit.test");
  auto channel = testing::MakeChannel(
      absl::StrCat("lbkit-static:///slow.lbkit.test:", backend->port()),
      testing::LbConfig("lbkit_round_robin"));
  channel->GetState(/*try_to_connect=*/true);
  names.Release();
  EXPECT_EQ(names.timed_out(), 0) << "the channel waited for the lookup";
  auto stub = examples::Greeter::NewStub(channel);
  EXPECT_TRUE(testing::WaitForBackends(*stub, {"slow-name"}));
}

// A name that does not resolve is looked up again, with backoff (1 s,
// doubling), as gRPC's DNS resolver retries: before, lbkit-static looked
// its names up once, at start, for the channel's life.
TEST(StaticResolverE2E, AFailedNameLookupIsRetried) {
  auto first = BackendProcess::Start("first");
  auto later = BackendProcess::Start("later");
  testing::FakeNames names;
  names.Set("first.lbkit.test", "127.0.0.1");
  names.Fail("later.lbkit.test");
  auto channel = testing::MakeChannel(
      absl::StrCat("lbkit-static:///first.lbkit.test:", first->port(), ",later.lbkit.test:",
                   later->port()),
      testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  // The whole list fails while one name does not resolve: gRPC's DNS
  // resolver does the same for its one name.
  testing::CallResult r = testing::CallOnce(*stub, 2000);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status.error_message().find("later.lbkit.test"), std::string::npos)
      << r.status.error_message();
  names.Set("later.lbkit.test", "127.0.0.1");
  EXPECT_TRUE(testing::CallUntil(
      *stub, 5,
      [](const testing::Tally& t) { return t.per_backend.size() == 2 && t.failed() == 0; },
      std::chrono::seconds(20)))
      << "never looked the name up again";
}

}  // namespace
}  // namespace lbkit
