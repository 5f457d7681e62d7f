// lbkit-etcd end to end: a real etcd (one member, or three on loopback),
// greeter servers that register themselves with --etcd (lbkit::
// EtcdRegistration), and a client channel on lbkit-etcd://. Times are
// printed, never asserted: waits are bounded loops.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <ratio>
#include <string>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lbkit/etcd.h"
#include "lbkit/stats.h"
#include "resolvers/common/address_lookup.h"
#include "resolvers/common/endpoint_spec.h"
#include "resolvers/etcd/etcd_client.h"
#include "resolvers/etcd/etcd_resolver.h"
#include "resolvers/file/endpoints_file.h"
#include "tests/support/backend_process.h"
#include "tests/support/etcd_process.h"
#include "tests/support/fake_names.h"
#include "tests/support/greeter_calls.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using testing::EtcdCluster;
using Clock = std::chrono::steady_clock;

constexpr char kPrefix[] = "/services/greeter/";

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Outlier ejection over round robin, and retries: what keeps calls
// succeeding while a dead server is still registered.
std::shared_ptr<grpc::Channel> EtcdChannel(const std::string& endpoints) {
  return testing::MakeChannel(
      absl::StrCat("lbkit-etcd://", endpoints, kPrefix),
      R"({"loadBalancingConfig": [{"lbkit_outlier_ejection": {
            "consecutive5xxErrors": 2, "baseEjectionTime": "30s",
            "childPolicy": [{"lbkit_round_robin": {}}]}}],
          "methodConfig": [{"name": [{"service": "lbkit.examples.Greeter"}],
            "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s", "maxBackoff": "0.1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
}

std::vector<std::string> RegisterFlags(const std::string& endpoints, int ttl_s = 2) {
  return {"--etcd=" + endpoints, absl::StrCat("--etcd_prefix=", kPrefix),
          absl::StrCat("--etcd_ttl_s=", ttl_s)};
}

// Calls on a thread of its own until stopped, counting failures.
class CallLoop {
 public:
  explicit CallLoop(examples::Greeter::Stub* stub)
      : thread_([this, stub] {
          const auto limit = Clock::now() + std::chrono::seconds(120);  // bounded
          while (!stop_ && Clock::now() < limit) {
            testing::CallResult r = testing::CallOnce(*stub, 2000);
            ++calls_;
            if (!r.status.ok()) {
              ++failed_;
              if (first_error_.empty()) first_error_ = r.status.error_message();
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
          }
        }) {}
  ~CallLoop() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int calls() const { return calls_; }
  int failed() const { return failed_; }
  const std::string& first_error() const { return first_error_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0}, failed_{0};
  std::string first_error_;
  std::thread thread_;
};

template <typename Pred>
bool WaitUntil(Pred done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(EtcdE2E, ServersComeAndGo) {
  auto etcd = EtcdCluster::Start(1);
  const auto flags = RegisterFlags(etcd->endpoints());
  std::vector<std::unique_ptr<BackendProcess>> servers;
  for (int i = 0; i < 3; ++i) servers.push_back(BackendProcess::Start(absl::StrCat("e", i), flags));
  auto channel = EtcdChannel(etcd->endpoints());
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"e0", "e1", "e2"}));

  // A 4th registers (greeter_server prints its "listening" line once the
  // key is written): first call answered by it. Measured from the spawn,
  // so process start-up and registration are included: an upper bound.
  const auto spawned = Clock::now();
  servers.push_back(BackendProcess::Start("e3", flags));
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"e3"}, std::chrono::seconds(10)));
  printf("[ figure ] 4th server: first call %.0f ms after the process was spawned "
         "(start-up and registration included)\n",
         MsSince(spawned));

  // SIGKILL: the key stays until the lease expires (TTL 2 s); meanwhile
  // outlier ejection and retries keep every call succeeding.
  {
    CallLoop calls(stub.get());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string key = kPrefix + servers[0]->address();
    const auto killed = Clock::now();
    servers[0]->Kill();
    ASSERT_TRUE(WaitUntil([&] { return etcd->List(kPrefix).count(key) == 0; },
                          std::chrono::seconds(15)));
    const double expired = MsSince(killed);
    ASSERT_TRUE(WaitUntil([&] { return !absl::StrContains(DumpState(), servers[0]->address()); },
                          std::chrono::seconds(5)))
        << DumpState();
    printf("[ figure ] SIGKILLed server: key gone %.0f ms later (TTL 2 s), out of the "
           "client's endpoints %.0f ms later\n",
           expired, MsSince(killed));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    calls.Stop();
    EXPECT_GT(calls.calls(), 100);
    EXPECT_EQ(calls.failed(), 0) << calls.first_error();
  }

  // Graceful stop: the key is revoked before the process exits.
  const std::string key1 = kPrefix + servers[1]->address();
  servers[1]->Stop();
  EXPECT_EQ(etcd->List(kPrefix).count(key1), 0u);
  const auto stopped = Clock::now();
  ASSERT_TRUE(WaitUntil([&] { return !absl::StrContains(DumpState(), servers[1]->address()); },
                        std::chrono::seconds(5)));
  printf("[ figure ] stopped server: out of the client's endpoints %.0f ms after it exited\n",
         MsSince(stopped));
  testing::Tally tally = testing::CallMany(*stub, 100);
  EXPECT_EQ(tally.failed(), 0) << tally.first_error;
  EXPECT_EQ(tally.per_backend["e1"], 0);
  EXPECT_EQ(tally.per_backend["e2"], 50);
  EXPECT_EQ(tally.per_backend["e3"], 50);
}

TEST(EtcdE2E, BadValuesAreSkippedAndNeverEmptyTheSet) {
  auto etcd = EtcdCluster::Start(1);
  auto server = BackendProcess::Start("good", RegisterFlags(etcd->endpoints(), 10));
  auto channel = EtcdChannel(etcd->endpoints());
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"good"}));

  etcd->Put(std::string(kPrefix) + "garbage", "not json");
  etcd->Put(std::string(kPrefix) + "zero-weight", R"({"address":"127.0.0.1:1","weight":0})");
  etcd->Put(std::string(kPrefix) + "no-port", R"({"address":"127.0.0.1"})");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  testing::Tally tally = testing::CallMany(*stub, 50);
  EXPECT_EQ(tally.per_backend["good"], 50) << tally.first_error;
  EXPECT_FALSE(absl::StrContains(DumpState(), "127.0.0.1:1\""));

  // A key overwritten with a bad value keeps its last good one.
  const std::string good_key = std::string(kPrefix) + server->address();
  etcd->Put(good_key, "{");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  tally = testing::CallMany(*stub, 50);
  EXPECT_EQ(tally.per_backend["good"], 50) << tally.first_error;

  // A good value under a new key joins.
  auto other = BackendProcess::Start("other");
  etcd->Put(std::string(kPrefix) + "other", absl::StrCat(R"({"address":")", other->address(),
                                                         R"("})"));
  ASSERT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("other") && t.per_backend.count("good");
  }));
  // Deleting a key removes its endpoint, whatever its value was.
  etcd->Delete(good_key);
  ASSERT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("other") && t.per_backend.at("other") == 20;
  }));
}

TEST(EtcdE2E, OnlyBadValuesFailCallsWithTheReason) {
  auto etcd = EtcdCluster::Start(1);
  etcd->Put(std::string(kPrefix) + "a", R"({"address":"127.0.0.1:1","weight":-1})");
  auto channel = EtcdChannel(etcd->endpoints());
  auto stub = examples::Greeter::NewStub(channel);
  testing::CallResult r = testing::CallOnce(*stub, 5000);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(r.status.error_message(),
                                "lbkit-etcd: no usable endpoint under /services/greeter/; "
                                "/services/greeter/a: invalid endpoint: [field:weight error:must "
                                "be an integer in [1, 2147483647], got -1]"))
      << r.status.error_message();
}

// Name lookups never run on the channel's WorkSerializer: the etcd members'
// names at start (GetState(true) starts the resolver on the calling thread,
// which before the fix waited there for the lookup), and names in values
// (before, the listing waited for every name in it: the literal endpoint
// beside a slow name got no call until that name resolved).
TEST(EtcdE2E, SlowNameLookupsStallNothing) {
  auto etcd = EtcdCluster::Start(1);
  auto literal = BackendProcess::Start("literal");
  auto named = BackendProcess::Start("named");
  etcd->Put(std::string(kPrefix) + "literal",
            absl::StrCat(R"({"address":")", literal->address(), R"("})"));
  etcd->Put(std::string(kPrefix) + "named",
            absl::StrCat(R"({"address":"named.lbkit.test:)", named->port(), R"("})"));
  const std::string port = etcd->endpoints().substr(etcd->endpoints().rfind(':') + 1);
  testing::FakeNames names;
  for (const char* n : {"etcd-a.lbkit.test", "etcd-b.lbkit.test", "named.lbkit.test"}) {
    names.Set(n, "127.0.0.1");
  }
  // Two member names (one name alone goes to gRPC's own DNS resolver).
  names.Block("etcd-a.lbkit.test");
  names.Block("named.lbkit.test");
  auto channel = EtcdChannel(absl::StrCat("etcd-a.lbkit.test:", port, ",etcd-b.lbkit.test:", port));
  channel->GetState(/*try_to_connect=*/true);
  names.Release("etcd-a.lbkit.test");
  EXPECT_EQ(names.timed_out(), 0) << "the channel waited for the etcd members' names";
  auto stub = examples::Greeter::NewStub(channel);
  EXPECT_TRUE(testing::WaitForBackends(*stub, {"literal"}, std::chrono::seconds(15)))
      << "the literal endpoint waited for the other key's name";
  names.Release();
  EXPECT_TRUE(testing::WaitForBackends(*stub, {"literal", "named"}, std::chrono::seconds(15)));
  EXPECT_EQ(names.timed_out(), 0);
}

// A value whose name does not resolve is looked up again when a policy
// asks for re-resolution (here, another endpoint going down), not only when
// the value changes: one failed lookup used to drop the backend for the
// channel's life.
TEST(EtcdE2E, AFailedNameInAValueIsRetriedOnReresolution) {
  auto etcd = EtcdCluster::Start(1);
  auto stable = BackendProcess::Start("stable");
  auto doomed = BackendProcess::Start("doomed");
  auto flaky = BackendProcess::Start("flaky");
  for (const auto* b : {stable.get(), doomed.get()}) {
    etcd->Put(std::string(kPrefix) + b->name(),
              absl::StrCat(R"({"address":")", b->address(), R"("})"));
  }
  etcd->Put(std::string(kPrefix) + "flaky",
            absl::StrCat(R"({"address":"flaky.lbkit.test:)", flaky->port(), R"("})"));
  testing::FakeNames names;
  names.Fail("flaky.lbkit.test");
  auto channel = EtcdChannel(etcd->endpoints());
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"stable", "doomed"}));
  names.Set("flaky.lbkit.test", "127.0.0.1");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  testing::Tally tally = testing::CallMany(*stub, 30);
  EXPECT_EQ(tally.per_backend.count("flaky"), 0u) << "looked up again without a reason";
  doomed->Kill();  // its connection fails: the policy asks for re-resolution
  EXPECT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("flaky") > 0;
  })) << "the failed name was never looked up again";
}

TEST(EtcdE2E, ThreeMembersLosingTheWatchedOneFailsNoCall) {
  auto etcd = EtcdCluster::Start(3);
  std::vector<std::unique_ptr<BackendProcess>> servers;
  for (int i = 0; i < 2; ++i) {
    servers.push_back(BackendProcess::Start(absl::StrCat("c", i),
                                            RegisterFlags(etcd->endpoints(), 10)));
  }
  auto channel = EtcdChannel(etcd->endpoints());
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"c0", "c1"}));
  std::string peer;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto watches = resolvers::EtcdWatches();
        peer = watches.size() == 1 ? watches[0].peer : "";
        return !peer.empty();
      },
      std::chrono::seconds(10)));
  int watched = -1;
  for (int i = 0; i < etcd->size(); ++i) {
    if (absl::EndsWith(peer, absl::StrCat(":", etcd->endpoint(i).substr(10)))) watched = i;
  }
  ASSERT_GE(watched, 0) << peer;

  CallLoop calls(stub.get());
  etcd->Kill(watched);
  // Registered through the two members left; the client must hear of it
  // on its re-established watch.
  std::string others;
  for (int i = 0; i < etcd->size(); ++i) {
    if (i != watched) others += (others.empty() ? "" : ",") + etcd->endpoint(i);
  }
  const auto killed = Clock::now();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto watches = resolvers::EtcdWatches();
        return watches.size() == 1 && !watches[0].peer.empty() && watches[0].peer != peer;
      },
      std::chrono::seconds(15)));
  const double moved = MsSince(killed);
  servers.push_back(BackendProcess::Start("c2", RegisterFlags(others, 10)));
  const auto registered = Clock::now();
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::StrContains(DumpState(), servers[2]->address()); },
      std::chrono::seconds(15)));
  printf("[ figure ] watched member killed: the watch was on another member %.0f ms later; a "
         "server registered through the others reached the client %.0f ms after registering\n",
         moved, MsSince(registered));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  calls.Stop();
  EXPECT_EQ(calls.failed(), 0) << calls.first_error();
  EXPECT_GT(calls.calls(), 50);
}

TEST(EtcdE2E, CompactionWhileDisconnectedRelists) {
  auto etcd = EtcdCluster::Start(3);
  const std::string others = etcd->endpoint(1) + "," + etcd->endpoint(2);
  auto first = BackendProcess::Start("first", RegisterFlags(others, 10));
  // The client knows member 0 only: killing it disconnects the resolver.
  auto channel = EtcdChannel(etcd->endpoint(0));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"first"}));
  ASSERT_EQ(resolvers::EtcdWatches().size(), 1u);
  EXPECT_EQ(resolvers::EtcdWatches()[0].lists, 1);

  etcd->Kill(0);
  auto second = BackendProcess::Start("second", RegisterFlags(others, 10));
  const std::string first_address = first->address();
  first->Stop();  // its key is deleted
  for (int i = 0; i < 20; ++i) etcd->Put(absl::StrCat("/unrelated/", i), "x", 1);
  const int64_t compacted = etcd->CompactAll(1);
  etcd->Restart(0);
  const auto restarted = Clock::now();

  // The watch resumes from a revision that is gone: only a full list can
  // know "first" left, since its delete event was compacted away.
  ASSERT_TRUE(WaitUntil([] { return resolvers::EtcdWatches()[0].lists >= 2; },
                        std::chrono::seconds(20)))
      << "compacted at revision " << compacted;
  printf("[ figure ] member back after compaction: re-listed %.0f ms later\n",
         MsSince(restarted));
  ASSERT_TRUE(testing::CallUntil(*stub, 20, [](const testing::Tally& t) {
    return t.per_backend.count("second") && t.per_backend.at("second") == 20;
  }));
  EXPECT_FALSE(absl::StrContains(DumpState(), first_address));
}

TEST(EtcdRegistrationTest, BadOptionsAreNamed) {
  auto start = [](auto edit) {
    EtcdRegistration::Options options;
    options.etcd_endpoints = "127.0.0.1:2379";
    options.prefix = "/services/x/";
    options.address = "127.0.0.1:50051";
    edit(options);
    return EtcdRegistration::Start(options).status();
  };
  using O = EtcdRegistration::Options;
  EXPECT_EQ(start([](O& o) { o.etcd_endpoints = ""; }).message(),
            "lbkit::EtcdRegistration: etcd_endpoints is empty");
  EXPECT_EQ(start([](O& o) { o.prefix = "/"; }).message(),
            "lbkit::EtcdRegistration: prefix must name a key prefix, e.g. /services/greeter/");
  EXPECT_EQ(start([](O& o) { o.address = "127.0.0.1"; }).message(),
            "lbkit::EtcdRegistration: address \"127.0.0.1\": address \"127.0.0.1\" has no port");
  EXPECT_EQ(start([](O& o) { o.weight = 0; }).message(),
            "lbkit::EtcdRegistration: weight must be in [1, 2147483647], not 0");
  EXPECT_EQ(start([](O& o) { o.ttl = std::chrono::seconds(0); }).message(),
            "lbkit::EtcdRegistration: ttl must be at least 1 s");
  EXPECT_EQ(start([](O& o) { o.etcd_endpoints = "127.0.0.1:2379,nope"; }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(start([](O& o) { o.locality = "a/b/c/d"; }).code(),
            absl::StatusCode::kInvalidArgument);
}

// The lease taken away (as an etcd restored from an old snapshot would):
// the next keepalive sees TTL 0 and the key is written again.
TEST(EtcdRegistrationTest, ALostLeaseIsReplaced) {
  auto etcd = EtcdCluster::Start(1);
  EtcdRegistration::Options options;
  options.etcd_endpoints = etcd->endpoints();
  options.prefix = "/services/lease";  // the "/" is added
  options.address = "127.0.0.1:50051";
  options.ttl = std::chrono::seconds(3);
  auto registration = EtcdRegistration::Start(options);
  ASSERT_TRUE(registration.ok()) << registration.status();
  ASSERT_TRUE((*registration)->WaitRegistered(std::chrono::seconds(10)).ok());
  EXPECT_EQ((*registration)->key(), "/services/lease/127.0.0.1:50051");
  EXPECT_EQ(etcd->List("/services/lease/").size(), 1u);

  auto channel = etcd::CreateEtcdChannel(etcd->endpoints());
  ASSERT_TRUE(channel.ok());
  etcd::BlockingClient client(*channel);
  etcdpb::RangeRequest range;
  range.set_key((*registration)->key());
  etcdpb::RangeResponse found;
  ASSERT_TRUE(client.Call(etcd::kRangeMethod, range, &found, std::chrono::seconds(5)).ok());
  ASSERT_EQ(found.kvs_size(), 1);
  etcdpb::LeaseRevokeRequest revoke;
  revoke.set_id(found.kvs(0).lease());
  etcdpb::LeaseRevokeResponse revoked;
  ASSERT_TRUE(client.Call(etcd::kLeaseRevokeMethod, revoke, &revoked, std::chrono::seconds(5)).ok());
  EXPECT_EQ(etcd->List("/services/lease/").size(), 0u);

  ASSERT_TRUE(WaitUntil([&] { return (*registration)->registrations() == 2; },
                        std::chrono::seconds(10)));
  EXPECT_EQ(etcd->List("/services/lease/").size(), 1u);

  // Deleted by someone else while the lease lives: written again at the
  // next keepalive (every TTL/3 = 1 s).
  etcd->Delete((*registration)->key());
  ASSERT_TRUE(WaitUntil([&] { return etcd->List("/services/lease/").size() == 1; },
                        std::chrono::seconds(10)));
  EXPECT_EQ((*registration)->registrations(), 2);  // the same lease, no new registration

  registration->reset();  // graceful: revoked, the key goes at once
  EXPECT_EQ(etcd->List("/services/lease/").size(), 0u);
}

// Not a speed test (nothing asserted on time): the figures for README.
TEST(EtcdE2E, ThousandEndpointsListedAndParsed) {
  auto etcd = EtcdCluster::Start(1);
  auto channel = etcd::CreateEtcdChannel(etcd->endpoints());
  ASSERT_TRUE(channel.ok());
  {
    etcd::BlockingClient client(*channel);
    for (int i = 0; i < 1000; ++i) {
      etcdpb::PutRequest put;
      put.set_key(absl::StrCat(kPrefix, "10.0.", i / 250, ".", i % 250, ":50051"));
      put.set_value(absl::StrCat(R"({"address":"10.0.)", i / 250, ".", i % 250,
                                 R"(:50051","locality":{"region":"r1","zone":"z)", i % 3,
                                 R"("},"weight":1,"labels":{"version":"v1"}})"));
      etcdpb::PutResponse done;
      ASSERT_TRUE(client.Call(etcd::kPutMethod, put, &done, std::chrono::seconds(10)).ok());
    }
  }
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  std::atomic<size_t> listed{0};
  const auto start = Clock::now();
  auto watch = etcd::PrefixWatch::Start(
      *channel, kPrefix, [&](const etcd::PrefixWatch::Snapshot& kvs) { listed = kvs.size(); },
      nullptr);
  ASSERT_TRUE(WaitUntil([&] { return listed.load() == 1000; }, std::chrono::seconds(20)));
  const double list_ms = MsSince(start);
  // What the resolver does with them next.
  const auto parse_start = Clock::now();
  std::vector<resolvers::EndpointSpec> specs;
  for (int i = 0; i < 1000; ++i) {
    auto spec = resolvers::ParseEndpointObject(absl::StrCat(
        R"({"address":"10.0.)", i / 250, ".", i % 250,
        R"(:50051","locality":{"region":"r1","zone":"z1"},"weight":1,"labels":{"version":"v1"}})"));
    ASSERT_TRUE(spec.ok());
    specs.push_back(*std::move(spec));
  }
  auto addresses = resolvers::ToServerAddresses(specs);
  ASSERT_TRUE(addresses.ok());
  const double parse_ms = MsSince(parse_start);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  watch->Shutdown();
  printf("[ figure ] 1,000 endpoints: listed in %.1f ms, parsed into addresses in %.1f ms; "
         "peak RSS grew by %ld KiB\n",
         list_ms, parse_ms, after.ru_maxrss - before.ru_maxrss);
}

}  // namespace
}  // namespace lbkit
