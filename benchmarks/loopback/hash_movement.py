#!/usr/bin/python3
"""Key movement of consistent hashing, measured end to end on loopback:
lbkit's ring hash and Maglev in the client against nginx
(`hash $http_x_user_id consistent`) and haproxy (`balance hdr(x-user-id)`,
`hash-type consistent`) as sidecars.

For N backends, every key `user-<k>` (k < --keys) is sent once with the
header x-user-id and the backend that answered is recorded. Then one backend
is removed (the middle one) and, separately, one is added, and the keys are
sent again. Reported per configuration: the fraction of keys that moved
against the ideal 1/N (remove) or 1/(N+1) (add), and the fraction that moved
between backends present before and after (0 is ideal). Keys answered by
more than one backend within a phase are counted as unstable.

  benchmarks/loopback/hash_movement.py                    # N = 10 and 100, 100,000 keys
  benchmarks/loopback/hash_movement.py --keys=20000 --endpoints=10
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_loopback as harness  # noqa: E402

TOP = harness.TOP
HEADER = "x-user-id"

CONFIGS = [
    harness.Config("lbkit_ring_hash", "direct", policy="lbkit_ring_hash",
                   policy_config=json.dumps({"requestHashHeader": HEADER})),
    harness.Config("lbkit_ring_hash_fixed", "direct", policy="lbkit_ring_hash",
                   policy_config=json.dumps({"requestHashHeader": HEADER,
                                             "fixedEntriesPerWeight": 1024})),
    harness.Config("lbkit_maglev", "direct", policy="lbkit_maglev",
                   policy_config=json.dumps({"requestHashHeader": HEADER})),
    harness.Config("nginx_hash_consistent", "nginx",
                   balance="hash $http_x_user_id consistent;"),
    harness.Config("haproxy_hash_consistent", "haproxy",
                   balance="hdr(x-user-id)\n  hash-type consistent"),
]


def owners(client_bin, target, config, keys, expect):
    """{key: backend} for one pass over every key, and the unstable count."""
    cmd = [client_bin, f"--target={target}", f"--service_config={config.service_config()}",
           f"--rpcs={keys}", f"--hash_keys={keys}", "--concurrency=16",
           f"--expect_backends={expect}", "--warmup_ms=10000", "--deadline_ms=5000", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{config.name}: greeter_client failed: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    if report["ok"] != keys:
        raise RuntimeError(f"{config.name}: {report['rpcs'] - report['ok']} RPCs failed: "
                           f"{report['errors']}")
    result, unstable = {}, 0
    for key, backends in report["key_to_backends"].items():
        if len(backends) != 1:
            unstable += 1
        result[key] = backends[0] if backends else None
    return result, unstable


def compare(before, after, before_set, after_set):
    moved = between = 0
    for key, was in before.items():
        now = after.get(key)
        if now == was:
            continue
        moved += 1
        if was in after_set and now in before_set:
            between += 1
    n = max(1, len(before))
    return moved / n, between / n


def run_one(config, backends, extra, removed, client_bin, keys, proxy_workers, workdir):
    """Base, remove and add passes for one configuration."""
    phases = {"base": backends, "remove": [b for b in backends if b is not removed],
              "add": backends + [extra]}
    seen = {}
    unstable = 0
    for phase, members in phases.items():
        proxy = None
        try:
            if config.kind != "direct":
                proxy = harness.Proxy(config, members, proxy_workers, workdir)
                target = f"ipv4:127.0.0.1:{proxy.port}"
            else:
                target = "ipv4:" + ",".join(f"127.0.0.1:{b.port}" for b in members)
            seen[phase], u = owners(client_bin, target, config, keys, len(members))
            unstable += u
        finally:
            if proxy:
                proxy.stop()
    names = {phase: {b.name for b in members} for phase, members in phases.items()}
    n = len(backends)
    out = {"unstable_keys": unstable}
    for phase, ideal in (("remove", 1 / n), ("add", 1 / (n + 1))):
        moved, between = compare(seen["base"], seen[phase], names["base"], names[phase])
        out[phase] = {"moved": moved, "ideal": ideal, "between_survivors": between}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--keys", type=int, default=100000)
    parser.add_argument("--endpoints", default="10,100",
                        help="comma-separated backend counts")
    parser.add_argument("--proxy-workers", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results",
                                                      "hash_movement.json"))
    parser.add_argument("--markdown-out", default=os.path.join(TOP, "benchmarks", "RESULTS.md"),
                        help="rewritten from the results directory of --out ('' = not)")
    args = parser.parse_args()

    server_bin = os.path.join(args.build_dir, "examples/greeter/greeter_server")
    client_bin = os.path.join(args.build_dir, "examples/greeter/greeter_client")
    for b in (server_bin, client_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"hash_movement: {b} is missing; build first")
    for tool in ("nginx", "haproxy"):
        if shutil.which(tool) is None:
            sys.exit(f"hash_movement: {tool} is not installed (scripts/bootstrap.sh installs it)")

    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lbkit-hash-movement-")
    os.chmod(workdir, 0o755)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "keys": args.keys, "rows": []}
    try:
        for n in [int(x) for x in args.endpoints.split(",")]:
            started_backends = []
            try:
                for i in range(n + 1):
                    started_backends.append(
                        harness.Backend(server_bin, f"backend-{i}", 0, workdir))
                backends, extra = started_backends[:n], started_backends[n]
                removed = backends[n // 2]
                for config in CONFIGS:
                    row = run_one(config, backends, extra, removed, client_bin, args.keys,
                                  args.proxy_workers, workdir)
                    row.update({"config": config.name, "endpoints": n})
                    results["rows"].append(row)
                    print(f"[{time.monotonic() - started:6.1f}s] N={n:<4} {config.name:<24} "
                          f"remove: moved {100 * row['remove']['moved']:5.2f}% (ideal "
                          f"{100 * row['remove']['ideal']:.2f}%), between survivors "
                          f"{100 * row['remove']['between_survivors']:5.2f}%   add: moved "
                          f"{100 * row['add']['moved']:5.2f}% (ideal "
                          f"{100 * row['add']['ideal']:.2f}%), between "
                          f"{100 * row['add']['between_survivors']:5.2f}%   unstable "
                          f"{row['unstable_keys']}", flush=True)
            finally:
                for b in started_backends:
                    b.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - started, 1)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    if args.markdown_out:
        sys.path.insert(0, os.path.dirname(HERE))
        import render_results
        render_results.write(args.markdown_out, os.path.dirname(args.out))
    print(f"wrote {args.out} in {results['duration_s']} s")
    bad = [r for r in results["rows"] if r["unstable_keys"]]
    if bad:
        sys.exit("hash_movement: keys answered by more than one backend in a pass: " +
                 ", ".join(f"{r['config']}/N={r['endpoints']}" for r in bad))


if __name__ == "__main__":
    main()
