#!/usr/bin/env bash
# Builds and runs the micro benchmarks (pick cost, control-plane cost, memory
# per endpoint) for every lbkit policy and gRPC's own policies, and the
# consistent-hashing quality figures (lbkit_hash_quality), writes their
# JSON to benchmarks/results/ and rewrites benchmarks/RESULTS.md.
#
#   benchmarks/run_micro.sh                 5 repetitions, medians
#   REPETITIONS=1 benchmarks/run_micro.sh   one quick pass
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
reps=${REPETITIONS:-5}
"$top/scripts/bootstrap.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLBKIT_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$top/build" -j"${LBKIT_JOBS:-2}" \
  --target lbkit_pick_benchmark lbkit_build_benchmark lbkit_memory_benchmark \
  lbkit_hash_quality >/dev/null
mkdir -p "$top/benchmarks/results"
for name in pick build memory; do
  echo "== $name"
  extra=()
  # The memory benchmark measures bytes, not time: one pass is exact.
  # Repetitions interleaved at random with the other benchmarks' own: a burst
  # of load on a shared machine then spreads over many medians, not all the
  # repetitions of one.
  [ "$name" != memory ] && extra=(--benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true
                                  --benchmark_enable_random_interleaving=true)
  "$top/build/benchmarks/lbkit_${name}_benchmark" "${extra[@]}" \
    --benchmark_out="$top/benchmarks/results/$name.json" --benchmark_out_format=json
done
echo "== hash quality"
"$top/build/benchmarks/lbkit_hash_quality" --out="$top/benchmarks/results/hash_quality.json"
/usr/bin/python3 "$top/benchmarks/render_results.py"
