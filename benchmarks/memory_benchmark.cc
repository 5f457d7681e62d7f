// Memory a policy holds per endpoint: heap bytes in use (glibc mallinfo2,
// so both operator new and gRPC's gpr_malloc are counted) after a policy
// with N READY endpoints and its picker exist, minus the same measure for
// the N fake subchannels and the address list the test harness itself
// creates, divided by N. Reported as the counter `bytes_per_endpoint`.
//
//   build/benchmarks/lbkit_memory_benchmark --benchmark_format=json

#include <algorithm>
#include <cstdint>
#include <malloc.h>
#include <map>
#include <string>
#include <vector>

#include "benchmarks/bench_main.h"
#include "benchmarks/picker_fixtures.h"

#include "absl/strings/str_cat.h"

namespace lbkit::bench {
namespace {

constexpr int kSizes[] = {10, 100, 1000, 10000};

int64_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

// What the harness allocates for n endpoints that a real channel would own
// instead of the policy: the fake subchannels and the recorded list.
int64_t HarnessBytes(int n) {
  const auto addresses = EndpointAddresses(n);
  const int64_t before = HeapInUse();
  {
    testing::HelperRecord record;
    for (const auto& address : addresses) {
      record.created.push_back(grpc_core::MakeRefCounted<testing::FakeSubchannel>(
          address, grpc_core::ChannelArgs()));
    }
    const int64_t with_fakes = HeapInUse();
    return with_fakes - before;
  }
}

void BM_Memory(benchmark::State& state, const PickerPolicy* policy) {
  const int n = static_cast<int>(state.range(0));
  const int64_t harness = HarnessBytes(n);
  int64_t per_endpoint = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const int64_t before = HeapInUse();
    ReadyPolicy ready(*policy, n);
    const int64_t after = HeapInUse();
    per_endpoint = (after - before - harness) / n;
  }
  state.counters["bytes_per_endpoint"] = static_cast<double>(per_endpoint);
}

void RegisterAllMemoryBenchmarks() {
  for (const PickerPolicy& policy : PickerPolicies()) {
    auto* b = benchmark::RegisterBenchmark(
        absl::StrCat("BM_Memory/", policy.label).c_str(), BM_Memory, &policy);
    for (int n : kSizes) b->Arg(n);
    b->Iterations(1);
  }
}

}  // namespace
}  // namespace lbkit::bench

int main(int argc, char** argv) {
  return lbkit::bench::BenchMain(argc, argv,
                                 lbkit::bench::RegisterAllMemoryBenchmarks);
}
