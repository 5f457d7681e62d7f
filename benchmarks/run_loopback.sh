#!/usr/bin/env bash
# Builds the example binaries and runs the loopback comparison
# (benchmarks/loopback/run_loopback.py): lbkit's policies vs gRPC's built-ins
# vs nginx and haproxy sidecars, on this machine's loopback. Writes
# benchmarks/RESULTS.md, benchmarks/loopback.png and
# benchmarks/loopback/results/loopback.json.
#
#   benchmarks/run_loopback.sh           full run (5 rounds)
#   benchmarks/run_loopback.sh --quick   3 rounds, a quarter of the RPCs
# Other flags go to run_loopback.py (--help lists them).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/bootstrap.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"${LBKIT_JOBS:-2}" --target greeter_server greeter_client >/dev/null
exec /usr/bin/python3 "$top/benchmarks/loopback/run_loopback.py" --build-dir "$top/build" "$@"
