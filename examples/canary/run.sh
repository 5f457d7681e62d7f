#!/usr/bin/env bash
# A canary release, Istio-style, in process: two v1 backends and one v2
# backend; the DestinationRule and VirtualService in canary.yaml become a
# service config through lbkit-istio; 10,000 calls show the 90/10 split.
#
#   examples/canary/run.sh            (after scripts/bootstrap.sh)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${LBKIT_BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" >/dev/null
cmake --build "$build" -j"${LBKIT_JOBS:-2}" --target greeter_server greeter_client lbkit-istio >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

endpoints=()
for name in v1-a v1-b v2-a; do
  "$build/examples/greeter/greeter_server" --port=0 --name="$name" >"$work/$name.out" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$name.out" ] && break; sleep 0.05; done
  address=$(sed -n 's/^listening on //p' "$work/$name.out")
  endpoints+=("$address;label.version=${name%%-*}")
done

echo "== canary.yaml through lbkit-istio:"
"$build/lbkit-istio" "$top/examples/canary/canary.yaml" >"$work/config.json"
cat "$work/config.json"

target="lbkit-static:///$(IFS=,; echo "${endpoints[*]}")"
echo "== 10000 calls to $target"
"$build/examples/greeter/greeter_client" --target="$target" \
  --service_config=@"$work/config.json" --rpcs=10000 --concurrency=4 --expect_backends=3
