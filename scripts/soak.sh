#!/usr/bin/env bash
# The chaos soak (tests/soak/soak.py): 6 greeter servers in 2 zones behind an
# lbkit-file endpoints file, a fixed-rate client through lbkit_outlier_ejection
# -> lbkit_locality -> lbkit_least_request with health checks and a retry
# policy, and a seeded random schedule of kills, freezes, health flips, error
# injection and endpoints-file rewrites (garbage included). Checks that every
# RPC is accounted for, that calls fail only where the schedule predicts,
# that RSS, fds and threads stay flat, and that the endpoints follow the file;
# writes report.json and soak.png. Exit status 0 only if every check passed.
#
#   scripts/soak.sh [--duration=SECONDS] [--rate=N] [--seed=N] [--out=DIR] [--build=DIR]
#
#   --duration  seconds of load, >= 30 (default 600: the documented 10-minute soak)
#   --rate      RPCs per second, open loop (default 2000)
#   --seed      the chaos schedule's seed (default 1; the same seed, the same schedule)
#   --out       where report.json and soak.png go (default benchmarks/results/soak)
#   --build     a configured build directory (default build/); the targets
#               lbkit_soak_client, greeter_server and greeter_control are
#               built there first (an ASan build, -DLBKIT_SANITIZE=address,
#               works too: the servers are then ASan builds as well)
#
# ctest runs a 60-second version (label "soak"): cd build && ctest -L soak
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
duration=600
rate=2000
seed=1
out="$top/benchmarks/results/soak"
build="$top/build"
for arg in "$@"; do
  case "$arg" in
    --duration=*) duration=${arg#*=} ;;
    --rate=*) rate=${arg#*=} ;;
    --seed=*) seed=${arg#*=} ;;
    --out=*) out=${arg#*=} ;;
    --build=*) build=${arg#*=} ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "soak.sh: $build is not a configured build directory (cmake -S $top -B $build)" >&2
  exit 2
fi
cmake --build "$build" -j"${LBKIT_JOBS:-2}" --target lbkit_soak_client greeter_server greeter_control
exec /usr/bin/python3 "$top/tests/soak/soak.py" --build-dir="$build" --duration="$duration" \
  --rate="$rate" --seed="$seed" --out="$out"
