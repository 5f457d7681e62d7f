// Control-plane costs, per policy:
//  - BM_BuildReady: a new policy gets N addresses and every subchannel
//    reports READY (N connectivity notifications, each of which may publish
//    a picker): the cost of a channel coming up.
//  - BM_RebuildOnFlip: one READY endpoint fails and comes back: two
//    notifications and the pickers they publish, at N endpoints.
//  - BM_SameAddressesUpdate: the resolver repeats the same N addresses (DNS
//    re-resolution does this every 30 s by default).
//
//   build/benchmarks/lbkit_build_benchmark --benchmark_format=json

#include "benchmarks/bench_main.h"
#include "benchmarks/picker_fixtures.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <string>
#include <utility>
#include <vector>

namespace lbkit::bench {
namespace {

constexpr int kSizes[] = {10, 100, 1000, 10000};

void BM_BuildReady(benchmark::State& state, const PickerPolicy* policy) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    ReadyPolicy ready(*policy, n);
    benchmark::DoNotOptimize(ready.picker());
    state.PauseTiming();  // Tearing down is not part of coming up.
    { ReadyPolicy discard = std::move(ready); }
    state.ResumeTiming();
  }
  state.SetComplexityN(n);
}

void BM_RebuildOnFlip(benchmark::State& state, const PickerPolicy* policy) {
  const int n = static_cast<int>(state.range(0));
  ReadyPolicy ready(*policy, n);
  const std::string victim = EndpointAddresses(n)[n / 2];
  for (auto _ : state) {
    ready.harness().SetState(victim, GRPC_CHANNEL_TRANSIENT_FAILURE,
                             absl::UnavailableError("flip"));
    ready.harness().SetState(victim, GRPC_CHANNEL_READY);
  }
}

void BM_SameAddressesUpdate(benchmark::State& state,
                            const PickerPolicy* policy) {
  const int n = static_cast<int>(state.range(0));
  ReadyPolicy ready(*policy, n);
  const auto addresses = EndpointAddresses(n);
  for (auto _ : state) {
    state.PauseTiming();
    auto list = testing::MakeAddresses(addresses);
    state.ResumeTiming();
    benchmark::DoNotOptimize(ready.harness().Update(std::move(list), policy->config));
    state.PauseTiming();
    // gRPC's policies build new subchannels on every update; report them
    // READY again so each iteration starts from the same state.
    for (const auto& address : addresses) {
      auto* s = ready.harness().record().Latest(address);
      if (s != nullptr && s->num_watchers() > 0) {
        ready.harness().SetState(address, GRPC_CHANNEL_READY);
      }
    }
    ready.harness().record().created.clear();
    state.ResumeTiming();
  }
}

void RegisterAllBuildBenchmarks() {
  for (const PickerPolicy& policy : PickerPolicies()) {
    auto* build = benchmark::RegisterBenchmark(
        absl::StrCat("BM_BuildReady/", policy.label).c_str(), BM_BuildReady,
        &policy);
    auto* flip = benchmark::RegisterBenchmark(
        absl::StrCat("BM_RebuildOnFlip/", policy.label).c_str(),
        BM_RebuildOnFlip, &policy);
    auto* same = benchmark::RegisterBenchmark(
        absl::StrCat("BM_SameAddressesUpdate/", policy.label).c_str(),
        BM_SameAddressesUpdate, &policy);
    for (int n : kSizes) {
      build->Arg(n);
      flip->Arg(n);
      same->Arg(n);
    }
    // Short minimum time: the untimed set-up of an iteration at 10,000
    // endpoints (gRPC rebuilding pickers O(N) times) would otherwise take
    // minutes.
    for (auto* b : {build, flip, same}) {
      b->Unit(benchmark::kMicrosecond)->MinTime(0.05);
    }
  }
}

}  // namespace
}  // namespace lbkit::bench

int main(int argc, char** argv) {
  return lbkit::bench::BenchMain(argc, argv,
                                 lbkit::bench::RegisterAllBuildBenchmarks);
}
