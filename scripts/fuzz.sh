#!/usr/bin/env bash
# Runs lbkit's fuzzers (tests/fuzz) for longer than the test suite does.
#
#   scripts/fuzz.sh [--seconds=600] [--only=NAME] [--jobs=1]
#
# Builds them in build-fuzz/ (clang, ASan+UBSan, libFuzzer) and runs each
# for --seconds, growing a corpus kept in build-fuzz/fuzz-corpus/NAME across
# runs. A crash, leak or timeout stops that fuzzer and fails the script; the
# input is saved as build-fuzz/fuzz-artifacts/NAME/crash-* (or leak-*,
# timeout-*) and is reproduced with `build-fuzz/tests/fuzz/NAME_fuzzer FILE`.
# One line per fuzzer sums up: inputs run, rate, corpus size, coverage.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
seconds=600
only=""
for arg in "$@"; do
  case "$arg" in
    --seconds=*) seconds=${arg#*=} ;;
    --only=*) only=${arg#*=} ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

"$top/scripts/bootstrap.sh"
build="$top/build-fuzz"
fuzzers=(lb_config endpoints_file static_uri istio_yaml k8s_watch)
[ -n "$only" ] && fuzzers=("$only")
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLBKIT_SANITIZE=address -DLBKIT_FUZZ=ON -DLBKIT_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j"${LBKIT_JOBS:-2}" --target "${fuzzers[@]/%/_fuzzer}"

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
summary=()
for name in "${fuzzers[@]}"; do
  corpus="$build/fuzz-corpus/$name" artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  log="$artifacts/last-run.log"
  echo "== $name: $seconds s"
  rc=0
  "$build/tests/fuzz/${name}_fuzzer" -dict="$top/tests/fuzz/lbkit.dict" -max_len=8192 \
    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 -max_total_time="$seconds" \
    -artifact_prefix="$artifacts/" "$corpus" "$top/tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)
  line="$name: ${runs:-?} inputs in $seconds s (${rate:-?}/s), corpus $(ls "$corpus" | wc -l) files, ${cov:-cov ?}, exit $rc"
  summary+=("$line")
  if [ "$rc" != 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|fuzzer:' "$log" | head -n 5
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
