// Cost of one pick, per policy, at 10 to 10,000 READY endpoints: what every
// RPC pays inside the channel. Includes the PickResult's subchannel
// reference (taken and dropped), as in the channel.
//
//   build/benchmarks/lbkit_pick_benchmark --benchmark_format=json

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "policies/common/call_counter.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "stats/stats.h"

#include "benchmarks/bench_main.h"
#include "benchmarks/picker_fixtures.h"
#include "src/core/lib/iomgr/exec_ctx.h"

namespace lbkit::bench {
namespace {

constexpr int kSizes[] = {10, 100, 1000, 10000};

// Built once per (policy, size), before timing, and shared by the threads of
// a multi-threaded run.
ReadyPolicy& Fixture(const PickerPolicy& policy, int n) {
  static auto* fixtures =
      new std::map<std::pair<std::string, int>, std::unique_ptr<ReadyPolicy>>;
  auto& slot = (*fixtures)[{policy.label, n}];
  if (slot == nullptr) slot = std::make_unique<ReadyPolicy>(policy, n);
  return *slot;
}

// `stats`: with lbkit's call counting (the default) or without it
// (LBKIT_STATS=0): the policy's own cost.
void BM_Pick(benchmark::State& state, const PickerPolicy* policy, bool stats_on) {
  stats::SetEnabled(stats_on);
  const int n = static_cast<int>(state.range(0));
  auto* picker = Fixture(*policy, n).picker();
  grpc_core::ExecCtx exec_ctx;
  grpc_core::LoadBalancingPolicy::PickArgs args{
      "/lbkit.examples.Greeter/SayHello", nullptr, nullptr};
  for (auto _ : state) {
    auto result = picker->Pick(args);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations());
  stats::SetEnabled(true);
}

// What lbkit's stats add to a call, apart from the policy's own pick: on the
// pick path (count the pick, take the endpoint's stats, a pooled tracker),
// and over the call (start and finish: two clock reads, the in-flight count,
// the status code and the latency bucket). Calls rotate over `range(0)`
// endpoints, as a picker's would.
void BM_StatsPerCall(benchmark::State& state, bool whole_call) {
  const int n = static_cast<int>(state.range(0));
  static auto* endpoints = new std::map<int, std::vector<std::shared_ptr<stats::EndpointStats>>>;
  static std::once_flag once;
  std::call_once(once, [] {
    for (int size : kSizes) {
      for (int i = 0; i < size; ++i) {
        (*endpoints)[size].push_back(stats::EndpointStats::Create(
            absl::StrCat("10.0.0.", i, ":443"), "", std::map<std::string, std::string>{}, 1));
      }
    }
  });
  const auto& list = endpoints->at(n);
  size_t i = static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    auto tracker = policies::CountCall(list[i], nullptr);
    if (whole_call) {
      tracker->Start();
      tracker->Finish({absl::OkStatus(), nullptr, nullptr});
    }
    benchmark::DoNotOptimize(tracker);
    if (++i == list.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void RegisterAllPickBenchmarks() {
  for (bool whole_call : {false, true}) {
    auto* b = benchmark::RegisterBenchmark(
        whole_call ? "BM_StatsPerCall/whole_call" : "BM_StatsPerCall/pick_only",
        BM_StatsPerCall, whole_call);
    b->Arg(10)->Arg(1000)->Threads(1)->Threads(2)->UseRealTime();
  }
  for (const PickerPolicy& policy : PickerPolicies()) {
    // Fixtures are made here, on the main thread, not inside a timed run.
    for (int n : kSizes) Fixture(policy, n);
    for (bool stats_on : {true, false}) {
      // gRPC's own pickers do not count: one run is enough.
      if (!stats_on && !absl::StartsWith(policy.name, "lbkit_")) continue;
      auto* b = benchmark::RegisterBenchmark(
          absl::StrCat(stats_on ? "BM_Pick/" : "BM_PickNoStats/", policy.label).c_str(),
          BM_Pick, &policy, stats_on);
      for (int n : kSizes) b->Arg(n);
      b->Threads(1);
      if (policy.thread_safe) b->Threads(2);
      b->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace lbkit::bench

int main(int argc, char** argv) {
  return lbkit::bench::BenchMain(argc, argv,
                                 lbkit::bench::RegisterAllPickBenchmarks);
}
