#!/usr/bin/env bash
# A fleet that finds itself through etcd: a local etcd, three greeter
# servers that register with --etcd (a lease kept alive), and a client on
# lbkit-etcd:// that follows them while a 4th joins, one is SIGKILLed (its
# key goes when its lease expires) and one stops gracefully (its key goes at
# once). No file to distribute, no control plane.
#
#   examples/etcd/run.sh            (after scripts/bootstrap.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${LBKIT_BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" >/dev/null
cmake --build "$build" -j"${LBKIT_JOBS:-2}" --target greeter_server greeter_client >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client_port=$(port) peer_port=$(port)
etcd_endpoint="127.0.0.1:$client_port"
/usr/bin/etcd --name demo --data-dir "$work/etcd" \
  --listen-client-urls "http://$etcd_endpoint" --advertise-client-urls "http://$etcd_endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "demo=http://127.0.0.1:$peer_port" \
  --logger zap --log-outputs stderr --log-level error 2>"$work/etcd.log" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://$etcd_endpoint/health" >/dev/null && break; sleep 0.1; done
echo "== etcd on $etcd_endpoint"

declare -A server_pid
start_server() {
  "$build/examples/greeter/greeter_server" --port=0 --name="$1" --etcd="$etcd_endpoint" \
    --etcd_prefix=/services/greeter/ --etcd_ttl_s=3 >"$work/$1.out" 2>>"$work/servers.log" &
  server_pid[$1]=$!
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1.out" ] && break; sleep 0.05; done
  echo "   $1 $(cat "$work/$1.out"), registered"
}
show_keys() {
  echo "   keys under /services/greeter/:"
  ETCDCTL_API=3 etcdctl --endpoints="$etcd_endpoint" get --prefix /services/greeter/ --keys-only \
    | sed '/^$/d; s/^/     /'
}

echo "== three servers register"
for name in a b c; do start_server "$name"; done
show_keys

target="lbkit-etcd://$etcd_endpoint/services/greeter/"
config='{"loadBalancingConfig":[{"lbkit_outlier_ejection":{"consecutive5xxErrors":2,
  "childPolicy":[{"lbkit_round_robin":{}}]}}],
  "methodConfig":[{"name":[{"service":"lbkit.examples.Greeter"}],"retryPolicy":{"maxAttempts":3,
  "initialBackoff":"0.01s","maxBackoff":"0.1s","backoffMultiplier":2,
  "retryableStatusCodes":["UNAVAILABLE"]}}]}'
echo "== client on $target: 12 s of calls while the fleet changes"
"$build/examples/greeter/greeter_client" --target="$target" --service_config="$config" \
  --duration_ms=12000 --rpcs=100000000 --concurrency=2 --warmup_ms=1000 --expect_backends=3 \
  >"$work/client.txt" 2>"$work/client.log" &
client=$!
pids+=($client)
sleep 3
echo "== t=3s: d joins"
start_server d
sleep 2
echo "== t=5s: a is SIGKILLed (its key stays until the 3 s lease expires)"
{ kill -9 "${server_pid[a]}"; wait "${server_pid[a]}"; } 2>/dev/null || true
sleep 0.5
show_keys
sleep 3.5
echo "== t=9s: lease expired"
show_keys
echo "== t=9s: b stops gracefully (SIGTERM: its key goes at once)"
kill -TERM "${server_pid[b]}"
sleep 0.3
show_keys
wait "$client" || true
echo "== the client's report (where the calls went, and failures)"
cat "$work/client.txt"
