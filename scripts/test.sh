#!/usr/bin/env bash
# Sets up a fresh machine if needed, builds lbkit and runs the whole test
# suite three times over:
#   build/       optimised build (-O2, never NDEBUG): every test;
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer: every test
#                but the install test;
#   build-tsan/  ThreadSanitizer: the algorithm and picker tests (labels
#                "algorithms" and "picker"; docs/testing.md says why only
#                those);
#   build-fuzz/  clang, ASan+UBSan and libFuzzer: each fuzzer of tests/fuzz
#                for a fixed number of inputs (label "fuzz").
# After the optimised build, scripts/check-includes.py (include what you
# use, for the headers that differ between Debian 12 and 13).
# Any failure or sanitizer report fails the script.
#
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh --no-sanitizers only the optimised build
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
jobs=${LBKIT_JOBS:-2}
sanitizers=1
for arg in "$@"; do
  case "$arg" in
    --no-sanitizers) sanitizers=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

"$top/scripts/bootstrap.sh"

configure_and_build() {
  local dir=$1; shift
  echo "== building $dir"
  cmake -S "$top" -B "$top/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$top/$dir" -j"$jobs" "${targets[@]}"
}

passed=0
failed=0
run_ctest() {
  local dir=$1; shift
  echo "== testing $dir"
  local log="$top/$dir/ctest-summary.log" rc=0
  (cd "$top/$dir" && ctest --output-on-failure --no-tests=error --timeout 600 -j2 "$@") | tee "$log" || rc=$?
  # "100% tests passed, 0 tests failed out of 30"
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
  if [ -n "$line" ]; then
    local f t
    f=$(sed -E 's/.*passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    t=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + t - f))
    failed=$((failed + f))
  fi
  if [ "$rc" != 0 ]; then
    echo "lbkit: $passed passed, $((failed > 0 ? failed : 1)) failed"
    exit "$rc"
  fi
}

# Include what you use for Abseil and the standard library, whose
# transitive includes differ between Debian 12 and 13 (docs/platforms.md).
# Needs Debian 12's iwyu; on other releases the Debian 12 run covers it.
check_includes() {
  if ! command -v iwyu_tool >/dev/null; then
    echo "== include check skipped: no iwyu on this release"
    return
  fi
  echo "== include check (include-what-you-use)"
  if "$top/scripts/check-includes.py" "$top/build"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "lbkit: $passed passed, $failed failed"
    exit 1
  fi
}

start=$(date +%s)
targets=()
configure_and_build build -DLBKIT_SANITIZE= -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
run_ctest build
check_includes

if [ "$sanitizers" = 1 ]; then
  # halt_on_error and exitcode make any report a failed test, not a log line.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export LSAN_OPTIONS=suppressions=$top/tests/sanitizers/lsan.supp:print_suppressions=0
  configure_and_build build-asan -DLBKIT_SANITIZE=address -DLBKIT_BUILD_BENCHMARKS=OFF
  run_ctest build-asan -LE install

  export TSAN_OPTIONS=halt_on_error=1:exitcode=87:suppressions=$top/tests/sanitizers/tsan.supp
  targets=(--target lbkit_algorithms_test lbkit_policies_test)
  configure_and_build build-tsan -DLBKIT_SANITIZE=thread -DLBKIT_BUILD_BENCHMARKS=OFF
  run_ctest build-tsan -L 'algorithms|picker'

  # The fuzzers need clang; ASan+UBSan as above, a fixed number of inputs
  # from a fixed seed each (scripts/fuzz.sh runs them longer).
  targets=(--target lb_config_fuzzer endpoints_file_fuzzer static_uri_fuzzer istio_yaml_fuzzer
           k8s_watch_fuzzer)
  CC=clang CXX=clang++ configure_and_build build-fuzz -DLBKIT_SANITIZE=address -DLBKIT_FUZZ=ON \
    -DLBKIT_BUILD_BENCHMARKS=OFF
  run_ctest build-fuzz -L fuzz
fi
echo "== all lbkit test runs passed in $(( $(date +%s) - start )) s"
echo "lbkit: $passed passed, $failed failed"
