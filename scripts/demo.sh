#!/usr/bin/env bash
# lbkit in one minute: three greeter backends on 127.0.0.1, one client
# channel, and where its RPCs went under lbkit_round_robin and under gRPC's
# pick_first; then one backend turns NOT_SERVING and its share drops to zero.
# Sets up the machine and builds first if needed.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
py=/usr/bin/python3
rpcs=${DEMO_RPCS:-3000}

"$top/scripts/bootstrap.sh"
echo "== building greeter_server and greeter_client"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${LBKIT_JOBS:-2}" --target greeter_server greeter_client >/dev/null
server="$build/examples/greeter/greeter_server"
client="$build/examples/greeter/greeter_client"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits for a backend's "listening on" line; prints its port.
port_of() {
  local name=$1 out="$work/$1.out"
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$out" 2>/dev/null; then
      sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out"
      return
    fi
    sleep 0.05
  done
  echo "demo: $name did not start; its log:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

names=(backend-a backend-b backend-c)
declare -A pid_of
addresses=()
for name in "${names[@]}"; do
  "$server" --port=0 --name="$name" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  pid_of[$name]=$!
done
for name in "${names[@]}"; do
  addresses+=("127.0.0.1:$(port_of "$name")")
done
# The channel follows an endpoints file (lbkit-file): the way a deployment
# hands lbkit its endpoints, with locality, weight and labels.
endpoints="$work/endpoints.json"
{
  echo '{"endpoints": ['
  for i in "${!addresses[@]}"; do
    sep=","; [ "$i" = $(( ${#addresses[@]} - 1 )) ] && sep=""
    echo "  {\"address\": \"${addresses[$i]}\", \"locality\": {\"region\": \"local\"}, \"labels\": {\"name\": \"${names[$i]}\"}}$sep"
  done
  echo ']}'
} >"$endpoints"
target="lbkit-file://$endpoints"
echo "== three backends in $endpoints:"
sed 's/^/   /' "$endpoints"

health='"healthCheckConfig":{"serviceName":""}'
rr_config="{\"loadBalancingConfig\":[{\"lbkit_round_robin\":{}}],$health}"
pf_config='{"loadBalancingConfig":[{"pick_first":{}}]}'

run_client() {  # config expect_backends output [extra flags...]
  local config=$1 expect=$2 out=$3
  shift 3
  "$client" --target="$target" --service_config="$config" --rpcs="$rpcs" \
    --concurrency=4 --expect_backends="$expect" --json "$@" >"$out"
}

echo "== $rpcs RPCs with lbkit_round_robin, then with gRPC's pick_first"
run_client "$rr_config" 3 "$work/rr.json"
run_client "$pf_config" 1 "$work/pf.json"

echo "== backend-b turns NOT_SERVING (SIGUSR1); $rpcs RPCs with lbkit_round_robin"
kill -USR1 "${pid_of[backend-b]}"
sleep 0.2
run_client "$rr_config" 2 "$work/rr_b_down.json" --print_state --print_metrics \
  2>"$work/rr_b_down.stderr"

"$py" - "$work" "${names[@]}" <<'PY'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
runs = [("lbkit_round_robin", "rr.json"), ("pick_first", "pf.json"),
        ("lbkit_round_robin,\nb NOT_SERVING", "rr_b_down.json")]
data = [json.load(open(f"{work}/{f}")) for _, f in runs]
heads = [h.split("\n") for h, _ in runs]
width = 24
print()
for line in range(2):
    cells = [h[line] if line < len(h) else "" for h in heads]
    print(f"{'backend':<12}" if line == 0 else " " * 12,
          "".join(f"{c:>{width}}" for c in cells))
for name in names:
    row = []
    for d in data:
        n = d["per_backend"].get(name, 0)
        row.append(f"{n:>6} ({100.0 * n / max(1, d['rpcs']):5.1f}%)")
    print(f"{name:<12}", "".join(f"{c:>{width}}" for c in row))
for label, key in (("errors", None), ("qps", "qps"), ("p99 (us)", "p99")):
    row = []
    for d in data:
        if key is None:
            row.append(str(sum(d["errors"].values())))
        elif key == "qps":
            row.append(f"{d['qps']:.0f}")
        else:
            row.append(f"{d['latency_us']['p99']:.0f}")
    print(f"{label:<12}", "".join(f"{c:>{width}}" for c in row))
print()
rr, pf, down = data
ok = (all(abs(rr["per_backend"].get(n, 0) - rr["rpcs"] / 3) <= rr["rpcs"] * 0.02 for n in names)
      and len(pf["per_backend"]) == 1
      and down["per_backend"].get("backend-b", 0) == 0
      and sum(down["errors"].values()) == 0)
print("lbkit_round_robin spreads every RPC over the three backends; pick_first"
      " sends all to one;\nwith backend-b NOT_SERVING, lbkit_round_robin sends"
      " it nothing." if ok else "demo: unexpected distribution (see table)")

# What lbkit itself says happened in the last run: lbkit::DumpState() and
# lbkit::PrometheusText(), which an application serves with lbkit::AdminServer.
lines = open(f"{work}/rr_b_down.stderr").read().splitlines()
state = json.loads(next(l for l in lines if l.startswith('{"policies"')))
print("\nlbkit::DumpState() after the last run (per endpoint):")
for p in state["policies"]:
    for e in p["endpoints"]:
        print(f"  {p['policy']:<18} {e['address']:<18} {e['state']:<18} picks {e['picks']:>5}"
              f"  finished {e['by_code']}")
print("\nlbkit::PrometheusText(), lbkit_endpoint_requests_total:")
for l in lines:
    if l.startswith("lbkit_endpoint_requests_total{"):
        print("  " + l)
sys.exit(0 if ok else 1)
PY
