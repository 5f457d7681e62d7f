// main() shared by the micro benchmarks: lbkit's policies registered and gRPC
// initialised before any benchmark runs, then `register_benchmarks()` adds
// the binary's benchmarks (they depend on the registered policies, so they
// cannot be static registrations).

#ifndef LBKIT_BENCHMARKS_BENCH_MAIN_H_
#define LBKIT_BENCHMARKS_BENCH_MAIN_H_

#include <grpc/grpc.h>

#include <cstdio>

#include "benchmark/benchmark.h"
#include "lbkit/lbkit.h"

namespace lbkit::bench {

template <typename Register>
int BenchMain(int argc, char** argv, Register register_benchmarks) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  absl::Status registered = lbkit::RegisterAll();
  if (!registered.ok()) {
    fprintf(stderr, "%s\n", registered.ToString().c_str());
    return 1;
  }
  grpc_init();
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  grpc_shutdown();
  return 0;
}

}  // namespace lbkit::bench

#endif  // LBKIT_BENCHMARKS_BENCH_MAIN_H_
