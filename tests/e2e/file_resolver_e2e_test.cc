// lbkit-file end to end: a channel follows its endpoints file through
// rewrites (atomic rename and in-place truncate-then-write) while calls keep
// flowing, and a corrupt write leaves traffic on the last good set.

#include <algorithm>
#include <fcntl.h>
#include <map>
#include <memory>
#include <ratio>
#include <set>
#include <stdio.h>
#include <string>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <sys/stat.h>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "resolvers/file/file_resolver.h"
#include "tests/support/backend_process.h"
#include "tests/support/fake_names.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/temp_files.h"

namespace lbkit {
namespace {

using testing::BackendProcess;
using Backends = std::vector<std::unique_ptr<BackendProcess>>;
using Clock = std::chrono::steady_clock;
using testing::TempDir;
using testing::WriteAtomically;

std::string EndpointsJson(const std::vector<const BackendProcess*>& backends,
                          bool with_service_config = true) {
  std::vector<std::string> entries;
  for (const BackendProcess* b : backends) {
    entries.push_back(absl::StrCat(R"({"address": ")", b->address(),
                                   R"(", "locality": {"region": "r1"}})"));
  }
  return absl::StrCat(
      R"({"endpoints": [)", absl::StrJoin(entries, ", "), "]",
      with_service_config
          ? R"(, "serviceConfig": {"loadBalancingConfig": [{"lbkit_round_robin": {}}]})"
          : "",
      "}\n");
}

// An editor-style rewrite: truncate, then write (readers can see it empty).
void WriteInPlace(const std::string& path, const std::string& content) {
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  close(fd);
}

TEST(FileResolverE2E, ServiceConfigAndEndpointsComeFromTheFile) {
  Backends backends;
  for (int i = 0; i < 2; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("file-", i)));
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, EndpointsJson({backends[0].get(), backends[1].get()}));
  // No service config from the application: the file's lbkit_round_robin
  // is used, so both backends get traffic (pick_first would use one).
  auto channel = testing::MakeChannel("lbkit-file://" + path, "");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"file-0", "file-1"}));
  testing::Tally tally = testing::CallMany(*stub, 100);
  EXPECT_EQ(tally.per_backend["file-0"], 50);
  EXPECT_EQ(tally.per_backend["file-1"], 50);
}

TEST(FileResolverE2E, NoGoodFileFailsCallsWithTheReason) {
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, R"({"endpoints": [{"address": "127.0.0.1:1", "weight": 0}]})");
  auto channel = testing::MakeChannel("lbkit-file://" + path,
                                      testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  testing::CallResult r = testing::CallOnce(*stub, 5000);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(r.status.error_message(),
            "lbkit-file: " + path +
                ": invalid endpoints file: [field:endpoints[0].weight error:must "
                "be an integer in [1, 2147483647], got 0]");
  auto missing = testing::MakeChannel("lbkit-file://" + dir.path() + "/nope.json",
                                      testing::LbConfig("lbkit_round_robin"));
  auto missing_stub = examples::Greeter::NewStub(missing);
  r = testing::CallOnce(*missing_stub, 5000);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status.error_message().find("cannot read the file"), std::string::npos)
      << r.status.error_message();
}

// 50 calls/s for the whole test on one channel while the file is rewritten
// 20 times; each change is followed (the lag is measured and printed), no
// call fails, and a corrupt write changes nothing.
TEST(FileResolverE2E, FollowsRewritesWithoutFailingCalls) {
  Backends backends;
  for (int i = 0; i < 4; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("rw-", i)));
  auto set = [&](std::initializer_list<int> indices) {
    std::vector<const BackendProcess*> v;
    for (int i : indices) v.push_back(backends[i].get());
    return v;
  };
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, EndpointsJson(set({0, 1})));
  // A long periodic re-check, so that inotify is what is being measured.
  auto channel = testing::MakeChannel("lbkit-file://" + path + "?refresh=60s", "");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"rw-0", "rw-1"}));

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  std::string first_failure;
  std::thread background([&] {
    auto next = Clock::now();
    while (!stop.load()) {
      testing::CallResult r = testing::CallOnce(*stub, 2000);
      ++sent;
      if (!r.status.ok() && failed.fetch_add(1) == 0) first_failure = r.status.error_message();
      next += std::chrono::milliseconds(20);  // 50 calls/s
      std::this_thread::sleep_until(next);
    }
  });

  const std::vector<std::vector<int>> plan = {{2, 3}, {0, 1}, {1, 2}, {3}, {0, 2, 3},
                                              {1},    {2},    {0, 3}, {1, 3}, {0, 1, 2}};
  std::vector<double> lags_ms;
  for (int change = 0; change < 20; ++change) {
    const std::vector<int>& indices = plan[change % plan.size()];
    std::vector<const BackendProcess*> want_set;
    std::set<std::string> want;
    for (int i : indices) {
      want_set.push_back(backends[i].get());
      want.insert(backends[i]->name());
    }
    const auto written = Clock::now();
    if (change % 2 == 0) {
      WriteAtomically(path, EndpointsJson(want_set));
    } else {
      WriteInPlace(path, EndpointsJson(want_set));
    }
    // Followed once 8 calls in a row land only on the new set.
    int streak = 0;
    const auto deadline = written + std::chrono::seconds(10);
    while (streak < 8 && Clock::now() < deadline) {
      testing::CallResult r = testing::CallOnce(*stub, 2000);
      streak = r.status.ok() && want.count(r.backend) ? streak + 1 : 0;
    }
    ASSERT_EQ(streak, 8) << "change " << change << " not followed within 10 s";
    lags_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - written).count());
    // One change every half second: 20 changes over about 10 s of traffic.
    std::this_thread::sleep_until(written + std::chrono::milliseconds(500));
  }

  // A corrupt write (as if cut off mid-write and never finished): the last
  // good set stays in force.
  const std::set<std::string> last_good = {"rw-1", "rw-3"};
  WriteAtomically(path, EndpointsJson(set({1, 3})));
  ASSERT_TRUE(testing::CallUntil(*stub, 10, [&](const testing::Tally& t) {
    return t.per_backend.size() == 2 && t.per_backend.count("rw-1") && t.per_backend.count("rw-3");
  }));
  WriteInPlace(path, R"({"endpoints": [{"address": ")");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  testing::Tally after = testing::CallMany(*stub, 100);
  EXPECT_EQ(after.failed(), 0) << after.first_error;
  for (auto& [name, n] : after.per_backend) EXPECT_TRUE(last_good.count(name)) << name;

  // Good endpoints with a serviceConfig the channel rejects: the whole file
  // is refused, endpoints included, and the last good set stays.
  WriteAtomically(path, absl::StrCat(R"({"endpoints": [{"address": ")", backends[0]->address(),
                                     R"("}], "serviceConfig": {"loadBalancingConfig": )",
                                     R"([{"lbkit_least_request": {"choiceCount": 1}}]}})"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  after = testing::CallMany(*stub, 100);
  EXPECT_EQ(after.failed(), 0) << after.first_error;
  for (auto& [name, n] : after.per_backend) EXPECT_TRUE(last_good.count(name)) << name;

  stop = true;
  background.join();
  EXPECT_EQ(failed.load(), 0) << first_failure;
  EXPECT_GT(sent.load(), 250);  // about 500 at 50/s; fewer on a loaded machine
  std::sort(lags_ms.begin(), lags_ms.end());
  printf("lbkit-file: %zu rewrites followed; lag from write to traffic on the new "
         "set: median %.0f ms, max %.0f ms; %d background calls, %d failed\n",
         lags_ms.size(), lags_ms[lags_ms.size() / 2], lags_ms.back(), sent.load(),
         failed.load());
}


// A barrier the watcher thread waits at (FileWatcherHooks::after_post)
// while the test destroys the channel: the thread's reference to the
// resolver is then the last one. It must be dropped inside an ExecCtx:
// before the fix it was not, and destroying the channel stack without one
// crashed (within a few cycles) or counted in destroyed_without_exec_ctx.
struct PostBarrier {
  absl::Mutex mu;
  bool armed = false, posted = false, released = false;
};
PostBarrier& Barrier() {
  static auto* barrier = new PostBarrier();
  return *barrier;
}
void WaitAtBarrier() {
  PostBarrier& b = Barrier();
  absl::MutexLock lock(&b.mu);
  if (!b.armed) return;
  b.armed = false;
  b.posted = true;
  // Bounded: a test that never releases must not hang the thread forever.
  b.mu.AwaitWithTimeout(absl::Condition(&b.released), absl::Seconds(20));
}

TEST(FileResolverE2E, ChannelDestroyedWhileTheWatcherDeliversAResult) {
  Backends backends;
  backends.push_back(BackendProcess::Start("short-0"));
  backends.push_back(BackendProcess::Start("short-1"));
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  resolvers::FileWatcherHooks::after_post = &WaitAtBarrier;
  const int bad_before = resolvers::FileWatcherHooks::destroyed_without_exec_ctx.load();
  for (int cycle = 0; cycle < 5; ++cycle) {
    WriteAtomically(path, EndpointsJson({backends[0].get()}));
    auto channel = testing::MakeChannel("lbkit-file://" + path + "?refresh=3600s", "");
    auto stub = examples::Greeter::NewStub(channel);
    ASSERT_TRUE(testing::WaitForBackends(*stub, {"short-0"}));
    {
      absl::MutexLock lock(&Barrier().mu);
      Barrier().posted = Barrier().released = false;
      Barrier().armed = true;
    }
    // The rewrite makes the watcher post a result, then wait at the barrier.
    WriteAtomically(path, EndpointsJson({backends[0].get(), backends[1].get()}));
    {
      absl::MutexLock lock(&Barrier().mu);
      ASSERT_TRUE(Barrier().mu.AwaitWithTimeout(absl::Condition(&Barrier().posted),
                                                absl::Seconds(20)));
    }
    stub.reset();
    channel.reset();
    const int destroyed_before = resolvers::FileWatcherHooks::destroyed.load();
    {
      absl::MutexLock lock(&Barrier().mu);
      Barrier().released = true;
    }
    // The watcher now drops the last reference; wait for the destructor.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (resolvers::FileWatcherHooks::destroyed.load() == destroyed_before &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GT(resolvers::FileWatcherHooks::destroyed.load(), destroyed_before) << "cycle " << cycle;
  }
  resolvers::FileWatcherHooks::after_post = nullptr;
  EXPECT_EQ(resolvers::FileWatcherHooks::destroyed_without_exec_ctx.load(), bad_before);
}

// Short-lived channels, as a request handler that makes one per request
// would: created, asked to connect, destroyed within milliseconds, while the
// watcher thread delivers its first result.
TEST(FileResolverE2E, ShortLivedChannelsDoNotCrash) {
  Backends backends;
  backends.push_back(BackendProcess::Start("brief-0"));
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, EndpointsJson({backends[0].get()}));
  const int bad_before = resolvers::FileWatcherHooks::destroyed_without_exec_ctx.load();
  for (int i = 0; i < 100; ++i) {
    auto channel = testing::MakeChannel("lbkit-file://" + path, "");
    channel->GetState(/*try_to_connect=*/true);
    std::this_thread::sleep_for(std::chrono::microseconds(500 * (i % 8)));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(resolvers::FileWatcherHooks::destroyed_without_exec_ctx.load(), bad_before);
}

// A host name in the file is looked up again on every periodic re-check,
// not only when the file's bytes change: a name that moves to another
// address (a replaced pod, a DNS change) is followed.
TEST(FileResolverE2E, HostNamesAreLookedUpAgainOnEveryRefresh) {
  Backends backends;
  backends.push_back(BackendProcess::Start("name-a"));
  backends.push_back(BackendProcess::Start(
      "name-b", {"--host=127.0.0.2", absl::StrCat("--port=", backends[0]->port())}));
  testing::FakeNames names;
  names.Set("greeter.lbkit.test", "127.0.0.1");
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, absl::StrCat(R"({"endpoints": [{"address": "greeter.lbkit.test:)",
                                     backends[0]->port(), R"("}]})"));
  auto channel = testing::MakeChannel("lbkit-file://" + path + "?refresh=100ms",
                                      testing::LbConfig("lbkit_round_robin"));
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"name-a"}));
  names.Set("greeter.lbkit.test", "127.0.0.2");  // the file is unchanged
  EXPECT_TRUE(testing::CallUntil(*stub, 10, [](const testing::Tally& t) {
    return t.per_backend.size() == 1 && t.per_backend.count("name-b") == 1;
  })) << "the file's name was not looked up again";
}

// A mounted ConfigMap is updated by kubelet as an atomic swap of the
// "..data" symlink; the file name itself (endpoints.json ->
// ..data/endpoints.json) sees no inotify event. With a re-check once an
// hour, only the swap itself can make the channel follow.
TEST(FileResolverE2E, FollowsAKubernetesConfigMapSwap) {
  Backends backends;
  for (int i = 0; i < 2; ++i) backends.push_back(BackendProcess::Start(absl::StrCat("cm-", i)));
  TempDir dir;
  const std::string d = dir.path();
  auto write_version = [&](const std::string& version, const BackendProcess* b) {
    ASSERT_EQ(mkdir((d + "/" + version).c_str(), 0755), 0);
    std::ofstream(d + "/" + version + "/endpoints.json") << EndpointsJson({b});
  };
  write_version("..2026_12_02_01_00_00.000000001", backends[0].get());
  ASSERT_EQ(symlink("..2026_12_02_01_00_00.000000001", (d + "/..data").c_str()), 0);
  ASSERT_EQ(symlink("..data/endpoints.json", (d + "/endpoints.json").c_str()), 0);
  auto channel = testing::MakeChannel("lbkit-file://" + d + "/endpoints.json?refresh=3600s", "");
  auto stub = examples::Greeter::NewStub(channel);
  ASSERT_TRUE(testing::WaitForBackends(*stub, {"cm-0"}));

  // kubelet's update: a new timestamped directory, a "..data_tmp" symlink to
  // it renamed over "..data", the old directory removed.
  const auto swapped = Clock::now();
  write_version("..2026_12_02_01_05_00.000000002", backends[1].get());
  ASSERT_EQ(symlink("..2026_12_02_01_05_00.000000002", (d + "/..data_tmp").c_str()), 0);
  ASSERT_EQ(rename((d + "/..data_tmp").c_str(), (d + "/..data").c_str()), 0);
  std::system(("rm -rf '" + d + "/..2026_12_02_01_00_00.000000001'").c_str());
  EXPECT_TRUE(testing::CallUntil(
      *stub, 10,
      [](const testing::Tally& t) {
        return t.per_backend.size() == 1 && t.per_backend.count("cm-1") == 1;
      },
      std::chrono::seconds(15)));
  printf("ConfigMap swap followed after %.0f ms\n",
         std::chrono::duration<double, std::milli>(Clock::now() - swapped).count());
}

// A server that closes its connections now and then (GOAWAY at its maximum
// connection age, as Kubernetes deployments set to spread load onto new
// pods) is telling its clients to look again. The client here follows a
// name in an lbkit-file endpoints file that is re-read only when asked (a
// re-check once an hour): the name gains a second backend, and only the
// re-resolution that a GOAWAY prompts can find it. gRPC's round_robin does;
// lbkit's policies did not (they re-resolved on failures only).
struct GoawayRun {
  double found_ms = -1;  // from the name's change to B's first call
  int failed = 0;
  int reresolutions = 0;  // re-resolution requests in the 3 s after B was found
};

GoawayRun RunGoaway(const std::string& policy) {
  GoawayRun run;
  auto a = BackendProcess::Start("goaway-a", {"--max_connection_age_ms=1000"});
  auto b = BackendProcess::Start(
      "goaway-b", {"--host=127.0.0.2", absl::StrCat("--port=", a->port()),
                   "--max_connection_age_ms=1000"});
  testing::FakeNames names;
  names.Set("fleet.lbkit.test", "127.0.0.1");
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, absl::StrCat(R"({"endpoints": [{"address": "fleet.lbkit.test:)",
                                     a->port(), R"("}]})"));
  auto channel = testing::MakeChannel("lbkit-file://" + path + "?refresh=1h",
                                      testing::LbConfig(policy));
  auto stub = examples::Greeter::NewStub(channel);
  if (!testing::WaitForBackends(*stub, {"goaway-a"})) return run;
  names.Set("fleet.lbkit.test", "127.0.0.1,127.0.0.2");  // a new pod
  const auto changed = Clock::now();
  while (Clock::now() < changed + std::chrono::seconds(10)) {
    testing::CallResult r = testing::CallOnce(*stub, 2000);
    if (!r.status.ok()) ++run.failed;
    if (r.backend == "goaway-b") {
      run.found_ms = std::chrono::duration<double, std::milli>(Clock::now() - changed).count();
      break;
    }
  }
  if (run.found_ms < 0) return run;
  const int before = resolvers::FileWatcherHooks::reresolution_requests.load();
  const auto window = Clock::now() + std::chrono::seconds(3);
  while (Clock::now() < window) {
    if (!testing::CallOnce(*stub, 2000).status.ok()) ++run.failed;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  run.reresolutions = resolvers::FileWatcherHooks::reresolution_requests.load() - before;
  return run;
}

TEST(FileResolverE2E, AGoawayMakesThePolicyLookAgain) {
  // gRPC's own round_robin first, for the comparison.
  const GoawayRun grpc = RunGoaway("round_robin");
  ASSERT_GE(grpc.found_ms, 0) << "gRPC's round_robin never found the new backend";
  printf("round_robin (gRPC): new backend found %.0f ms after the name changed (the "
         "connection age is 1 s); %d failed calls; %d re-resolution requests in 3 s\n",
         grpc.found_ms, grpc.failed, grpc.reresolutions);
  for (const char* policy :
       {"lbkit_round_robin", "lbkit_least_request", "lbkit_ring_hash", "lbkit_maglev"}) {
    const GoawayRun run = RunGoaway(policy);
    EXPECT_GE(run.found_ms, 0) << policy << " never found the new backend";
    EXPECT_EQ(run.failed, 0) << policy;
    // Every GOAWAY asks once, as gRPC's policy does. Two runs are compared,
    // each with its own connection ages (+-10% jitter) in a 3 s window:
    // allow for that, but not for a storm.
    EXPECT_LE(run.reresolutions, grpc.reresolutions * 3 / 2 + 2) << policy;
    printf("%s: new backend found %.0f ms after the name changed; %d failed calls; %d "
           "re-resolution requests in 3 s\n",
           policy, run.found_ms, run.failed, run.reresolutions);
  }
}

// refresh: both bounds are inclusive, and minutes and hours are spelled as
// such.
TEST(FileResolverE2E, RefreshBoundsAreInclusive) {
  auto backend = BackendProcess::Start("refresh-0");
  TempDir dir;
  const std::string path = dir.path() + "/endpoints.json";
  WriteAtomically(path, EndpointsJson({backend.get()}));
  for (const char* ok : {"10ms", "24h", "1440m", "86400s", "5m"}) {
    auto channel = testing::MakeChannel("lbkit-file://" + path + "?refresh=" + ok, "");
    auto stub = examples::Greeter::NewStub(channel);
    EXPECT_TRUE(testing::WaitForBackends(*stub, {"refresh-0"}, std::chrono::seconds(10))) << ok;
  }
  for (const char* bad : {"9ms", "25h", "86401s", "1d", "h"}) {
    auto channel = testing::MakeChannel("lbkit-file://" + path + "?refresh=" + bad, "");
    auto stub = examples::Greeter::NewStub(channel);
    testing::CallResult r = testing::CallOnce(*stub, 5000);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << bad;
    EXPECT_EQ(r.status.error_message(),
              absl::StrCat("lbkit-file: refresh=", bad,
                           " is not a duration between 10ms and 24h (e.g. 500ms, 1s, 5m, 24h)"))
        << bad;
  }
}

}  // namespace
}  // namespace lbkit
