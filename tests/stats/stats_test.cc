// The stats registry, the call counter (policies/common) and both outputs, without servers:
// counts land where they should, and the Prometheus text passes a strict
// parser of the exposition format (written here: Debian has no promtool).

#include "stats/stats.h"
#include "policies/common/call_counter.h"

#include <regex>
#include <set>
#include <thread>
#include <vector>
#include <sstream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "lbkit/stats.h"
#include "src/core/lib/json/json.h"

namespace lbkit::stats {
namespace {

using policies::CountCall;
using Tracker = grpc_core::LoadBalancingPolicy::SubchannelCallTrackerInterface;

void Finish(Tracker* t, absl::Status status) { t->Finish({std::move(status), nullptr, nullptr}); }

TEST(CallCounter, CountsPicksCallsCodesAndInFlight) {
  auto e = EndpointStats::Create("10.0.0.1:80", "r/z", std::map<std::string, std::string>{{"version", "v1"}}, 3);
  auto a = CountCall(e, nullptr);
  auto b = CountCall(e, nullptr);
  auto c = CountCall(e, nullptr);
  EXPECT_EQ(e->picks(), 3u);
  // In flight from the pick: the channel may take a while to start a call.
  EXPECT_EQ(e->in_flight(), 3);
  a->Start();
  b->Start();
  Finish(a.get(), absl::OkStatus());
  Finish(b.get(), absl::UnavailableError("x"));
  EXPECT_EQ(e->in_flight(), 1);
  EXPECT_EQ(e->finished(0), 1u);
  EXPECT_EQ(e->finished(14), 1u);  // UNAVAILABLE
  // A pick the channel re-queued: never started, never counted as a call.
  c.reset();
  EXPECT_EQ(e->in_flight(), 0);
  EXPECT_EQ(e->picks(), 3u);
  // A started call whose tracker goes without Finish (cancelled stream).
  auto d = CountCall(e, nullptr);
  d->Start();
  d.reset();
  EXPECT_EQ(e->in_flight(), 0);
  uint64_t histogram = 0;
  for (size_t i = 0; i <= kLatencyBounds.size(); ++i) histogram += e->latency_bucket(i);
  EXPECT_EQ(histogram, 2u);
}

TEST(CallCounter, ForwardsToThePolicysOwnTracker) {
  struct Inner : Tracker {
    int* starts;
    int* finishes;
    Inner(int* s, int* f) : starts(s), finishes(f) {}
    void Start() override { ++*starts; }
    void Finish(FinishArgs) override { ++*finishes; }
  };
  int starts = 0, finishes = 0;
  auto e = EndpointStats::Create("a:1", "", std::map<std::string, std::string>{}, 1);
  auto t = CountCall(e, std::make_unique<Inner>(&starts, &finishes));
  t->Start();
  Finish(t.get(), absl::OkStatus());
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(finishes, 1);
}

TEST(EndpointStats, LatencyBuckets) {
  auto e = EndpointStats::Create("a:1", "", {}, 1);
  for (int64_t ns : {int64_t{300'000},           // 0.3 ms -> le 0.0005
                     int64_t{1'000'000},         // exactly 1 ms -> le 0.001
                     int64_t{20'000'000'000}}) {  // 20 s -> +Inf
    e->CountPick();
    e->CallFinished(0, ns);
  }
  EXPECT_EQ(e->latency_bucket(0), 1u);
  EXPECT_EQ(e->latency_bucket(1), 1u);
  EXPECT_EQ(e->latency_bucket(kLatencyBounds.size()), 1u);
  EXPECT_EQ(e->latency_sum_ns(), 20'001'300'000u);
}

// Picks are counted in per-thread cells: the totals add every thread's,
// including threads that have exited since.
TEST(EndpointStats, PicksFromManyThreadsAddUpAfterTheyExit) {
  auto e = EndpointStats::Create("10.0.0.2:80", "", {}, 1);
  constexpr int kThreads = 4;
  constexpr int kCalls = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        auto call = CountCall(e, nullptr);
        if (i % 2 == 0) {
          call->Start();
          Finish(call.get(), t == 0 ? absl::OkStatus() : absl::UnavailableError("x"));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(e->picks(), uint64_t{kThreads} * kCalls);
  EXPECT_EQ(e->finished(0), uint64_t{kCalls} / 2);
  EXPECT_EQ(e->finished(14), uint64_t{kThreads - 1} * kCalls / 2);
  EXPECT_EQ(e->in_flight(), 0);
}

// A policy drops an endpoint's stats while a call picked for it still runs:
// the call still counts, and a new endpoint that reuses the storage starts
// from zero.
TEST(EndpointStats, OutliveTheirOwnerUntilTheLastCallEnds) {
  SweepReleasedEndpointStats();
  const size_t waiting = ReleasedEndpointStatsForTesting();
  auto e = EndpointStats::Create("10.0.0.3:80", "", {}, 1);
  auto call = CountCall(e, nullptr);
  call->Start();
  e.reset();  // the policy's last reference: the call still counts on it
  EXPECT_EQ(ReleasedEndpointStatsForTesting(), waiting + 1);
  // Other endpoints come and go meanwhile (each sweeps the released ones).
  for (int i = 0; i < 3; ++i) EndpointStats::Create("10.0.0.4:80", "", {}, 1).reset();
  EXPECT_EQ(ReleasedEndpointStatsForTesting(), waiting + 1);
  Finish(call.get(), absl::OkStatus());  // a use after free under ASan if it were gone
  call.reset();
  SweepReleasedEndpointStats();
  EXPECT_EQ(ReleasedEndpointStatsForTesting(), waiting);
  // Its slot is reused from zero: every thread's cells were cleared.
  auto fresh = EndpointStats::Create("10.0.0.5:80", "", {}, 1);
  EXPECT_EQ(fresh->picks(), 0u);
  EXPECT_EQ(fresh->in_flight(), 0);
  EXPECT_EQ(fresh->finished(0), 0u);
}

// A call the channel drops without finishing also releases the stats.
TEST(EndpointStats, AnAbandonedCallAlsoLetsThemGo) {
  SweepReleasedEndpointStats();
  const size_t waiting = ReleasedEndpointStatsForTesting();
  auto e = EndpointStats::Create("10.0.0.8:80", "", {}, 1);
  auto call = CountCall(e, nullptr);
  e.reset();
  EXPECT_EQ(ReleasedEndpointStatsForTesting(), waiting + 1);
  call.reset();
  SweepReleasedEndpointStats();
  EXPECT_EQ(ReleasedEndpointStatsForTesting(), waiting);
}

// The exposition format, strictly: every family has HELP then TYPE before
// its samples, names and labels are well formed, label values escaped,
// values are numbers, no sample appears twice, histogram buckets are
// cumulative and end at +Inf with _count equal to it.
void CheckExposition(const std::string& text, std::set<std::string>* families) {
  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\} (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\+Inf))");
  std::string current, current_type;
  std::set<std::string> seen_samples;
  std::map<std::string, uint64_t> last_bucket;
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  for (absl::string_view line_view : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string line(line_view);
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      current = m[1];
      current_type.clear();
      EXPECT_TRUE(families->insert(current).second) << "family twice: " << current;
    } else if (std::regex_match(line, m, type)) {
      EXPECT_EQ(m[1], current) << "TYPE without its HELP: " << line;
      current_type = m[2];
    } else if (std::regex_match(line, m, sample)) {
      const std::string name = m[1];
      EXPECT_FALSE(current_type.empty()) << "sample before TYPE: " << line;
      if (current_type == "histogram") {
        EXPECT_TRUE(name == current + "_bucket" || name == current + "_sum" ||
                    name == current + "_count")
            << line;
      } else {
        EXPECT_EQ(name, current) << line;
      }
      EXPECT_TRUE(seen_samples.insert(name + "{" + std::string(m[2]) + "}").second)
          << "duplicate sample: " << line;
      if (name == current + "_bucket") {
        std::string series = m[2];
        series = series.substr(0, series.rfind(",le="));
        const uint64_t v = std::stoull(m[3]);
        EXPECT_GE(v, last_bucket[series]) << "buckets not cumulative: " << line;
        last_bucket[series] = v;
      }
    } else {
      ADD_FAILURE() << "not exposition format: " << line;
    }
  }
}

TEST(Prometheus, StrictFormatAndDocumentedFamilies) {
  auto policy = PolicyStats::Register("lbkit_round_robin", true);
  policy->SetTarget("lbkit-static:///weird\"target\\with\nnewline");
  auto e1 = EndpointStats::Create("10.0.0.1:80", "r/z", std::map<std::string, std::string>{}, 1);
  auto e2 = EndpointStats::Create("[::1]:80", "", std::map<std::string, std::string>{}, 1);
  policy->SetEndpoints({e1, e2});
  auto t = CountCall(e1, nullptr);
  t->Start();
  Finish(t.get(), absl::DeadlineExceededError("slow"));
  auto ejector = PolicyStats::Register("lbkit_outlier_ejection", false);
  auto view = EndpointStats::Create("10.0.0.1:80", "", std::map<std::string, std::string>{}, 1);
  view->SetEjected(true, 123, 1);
  ejector->SetEndpoints({view});

  std::set<std::string> families;
  CheckExposition(PrometheusText(), &families);
  for (const char* f : {"lbkit_endpoint_picks_total", "lbkit_endpoint_requests_total",
                        "lbkit_endpoint_in_flight", "lbkit_endpoint_ready",
                        "lbkit_endpoint_healthy", "lbkit_endpoint_ejected",
                        "lbkit_request_duration_seconds", "lbkit_policy_picker_updates_total", "lbkit_policy_drops_total",
                        "lbkit_policy_resolver_errors_total"}) {
    EXPECT_TRUE(families.count(f)) << f;
  }
  const std::string text = PrometheusText();
  EXPECT_NE(text.find("code=\"DEADLINE_EXCEEDED\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lbkit_endpoint_ejected{target=\"\",policy=\"lbkit_outlier_ejection\","
                      "endpoint=\"10.0.0.1:80\",locality=\"\"} 1"),
            std::string::npos);
}

TEST(DumpState, ShowsALatencyEstimateOnlyWhereAPolicyKeepsOne) {
  auto policy = PolicyStats::Register("lbkit_least_request", true);
  policy->SetTarget("estimate-test");
  auto with = EndpointStats::Create("10.0.0.6:80", "", {}, 1);
  auto without = EndpointStats::Create("10.0.0.7:80", "", {}, 1);
  with->SetLatencyEstimate(2.5e6);
  policy->SetEndpoints({with, without});
  auto json = grpc_core::Json::Parse(DumpState());
  ASSERT_TRUE(json.ok()) << json.status();
  for (const auto& p : json->object_value().at("policies").array_value()) {
    if (p.object_value().at("target").string_value() != "estimate-test") continue;
    const auto& endpoints = p.object_value().at("endpoints").array_value();
    ASSERT_EQ(endpoints.size(), 2u);
    EXPECT_EQ(endpoints[0].object_value().at("latency_estimate_ms").string_value(), "2.500");
    EXPECT_EQ(endpoints[1].object_value().at("latency_estimate_ms").type(),
              grpc_core::Json::Type::JSON_NULL);
  }
}

TEST(DumpState, IsJsonWithEveryEndpoint) {
  auto policy = PolicyStats::Register("lbkit_least_request", true);
  policy->SetTarget("dump-test");
  policy->SetConfigJson(R"({"choiceCount":2})");
  policy->CountResolverError("UNAVAILABLE: no file");
  policy->SetEndpoints({EndpointStats::Create(
      "10.9.9.9:1", "r/z/s", std::map<std::string, std::string>{{"k", "v\"q'\xc3\xa9\n"}}, 7)});
  auto json = grpc_core::Json::Parse(DumpState());
  ASSERT_TRUE(json.ok()) << json.status() << DumpState();
  bool found = false;
  for (const auto& p : json->object_value().at("policies").array_value()) {
    if (p.object_value().at("target").string_value() != "dump-test") continue;
    found = true;
    EXPECT_EQ(p.object_value().at("config").object_value().at("choiceCount").string_value(), "2");
    EXPECT_EQ(p.object_value().at("resolver_errors").string_value(), "1");
    const auto& e = p.object_value().at("endpoints").array_value().at(0).object_value();
    EXPECT_EQ(e.at("address").string_value(), "10.9.9.9:1");
    EXPECT_EQ(e.at("locality").string_value(), "r/z/s");
    EXPECT_EQ(e.at("labels").object_value().at("k").string_value(), "v\"q'\xc3\xa9\n");
    EXPECT_EQ(e.at("weight").string_value(), "7");
    EXPECT_EQ(e.at("state").string_value(), "CONNECTING");
  }
  EXPECT_TRUE(found);
}

TEST(Registry, APolicyLeavesWhenItGoes) {
  auto policy = PolicyStats::Register("lbkit_maglev", true);
  policy->SetTarget("short-lived");
  auto count = [] {
    int n = 0;
    for (const auto& s : PolicyStats::ReadAll()) n += s.target == "short-lived";
    return n;
  };
  EXPECT_EQ(count(), 1);
  policy.reset();
  EXPECT_EQ(count(), 0);
}

}  // namespace
}  // namespace lbkit::stats
