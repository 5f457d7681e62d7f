#!/usr/bin/python3
"""Locality failover timing on loopback: how long calls take to reach the
next zone when the local zone dies, and how many fail meanwhile.

Five greeter backends: backend-0..2 in zone a (local), backend-3..4 in zone b.
A closed-loop greeter_client (4 in flight) runs for --duration-ms; early
on (at least 2 s before the end), the three zone-a backends are SIGKILLed at
once. From the client's
timeline (10 ms buckets) the harness reports the time from the kill to the
first success in zone b, the RPCs that failed after the kill, and when the
last one failed.

Compared: lbkit_locality (lbkit-file endpoints with localities) with and
without a retryPolicy on UNAVAILABLE, nginx with zone b as `backup` servers
(default grpc_next_upstream), and haproxy with zone b as `backup` servers,
TCP health checks every 200 ms and `option redispatch`.

  benchmarks/loopback/failover.py                  # 5 rounds
  benchmarks/loopback/failover.py --rounds=1       # quick
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_loopback as harness  # noqa: E402

TOP = harness.TOP
ZONE_A = 3
ZONE_B = 2

RETRY = {"methodConfig": [{
    "name": [{"service": "lbkit.examples.Greeter"}],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.02s", "maxBackoff": "0.2s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}


class Case:
    def __init__(self, name, kind, retry=False):
        self.name, self.kind, self.retry = name, kind, retry

    def service_config(self):
        if self.kind != "direct":
            return json.dumps({"loadBalancingConfig": [{"pick_first": {}}]})
        config = {"loadBalancingConfig": [{"lbkit_locality": {"locality": "r1/a"}}]}
        if self.retry:
            config.update(RETRY)
        return json.dumps(config)


CASES = [
    Case("lbkit_locality_retry", "direct", retry=True),
    Case("lbkit_locality", "direct"),
    Case("nginx_backup", "nginx"),
    Case("haproxy_backup", "haproxy"),
]


def zone_of(backend_name):
    return "a" if int(backend_name.rsplit("-", 1)[1]) < ZONE_A else "b"


def endpoints_file(path, backends):
    entries = [{"address": f"127.0.0.1:{b.port}",
                "locality": {"region": "r1", "zone": zone_of(b.name)}} for b in backends]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"endpoints": entries}, f)
    os.rename(tmp, path)


def run_case(case, server_bin, client_bin, duration_ms, workdir):
    backends = []
    proxy = None
    try:
        for i in range(ZONE_A + ZONE_B):
            b = harness.Backend(server_bin, f"backend-{i}", 0, workdir)
            if zone_of(b.name) == "b":
                b.nginx_params = "backup"
                b.haproxy_params = "backup check inter 200ms fall 1 rise 1"
            else:
                b.haproxy_params = "check inter 200ms fall 1 rise 1"
            backends.append(b)
        if case.kind == "direct":
            path = os.path.join(workdir, f"{case.name}-endpoints.json")
            endpoints_file(path, backends)
            target = "lbkit-file://" + path
        else:
            config = harness.Config(case.name, case.kind,
                                    balance="" if case.kind == "nginx" else "roundrobin\n"
                                    "  option redispatch\n  retries 3")
            proxy = harness.Proxy(config, backends, 2, workdir)
            target = f"ipv4:127.0.0.1:{proxy.port}"
        cmd = [client_bin, f"--target={target}", f"--service_config={case.service_config()}",
               "--rpcs=10000000", f"--duration_ms={duration_ms}", "--timeline_ms=10",
               "--concurrency=4", f"--expect_backends={1 if proxy else ZONE_A}",
               "--deadline_ms=5000", "--json"]
        report, kill_offset = harness.run_with_event(
            cmd, lambda: [b.proc.send_signal(signal.SIGKILL) for b in backends[:ZONE_A]],
            duration_ms, case.name)
    finally:
        if proxy:
            proxy.stop()
        for b in backends:
            b.stop()
    first_b = last_failure = None
    failed = total = ok_first_second = 0
    for since, bucket in harness.buckets_after(report, kill_offset):
        failed += bucket["failed"]
        total += bucket["failed"] + sum(bucket["ok"].values())
        if bucket["failed"]:
            last_failure = since
        if since <= 1000:
            ok_first_second += sum(bucket["ok"].values())
        if first_b is None and any(zone_of(n) == "b" for n in bucket["ok"]):
            first_b = since
    return {"first_success_in_b_ms": first_b, "failed_after_kill": failed,
            "rpcs_after_kill": total, "last_failure_ms": last_failure,
            "ok_in_first_second": ok_first_second,
            "qps": report["qps"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration-ms", type=int, default=4000)
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results",
                                                      "failover.json"))
    parser.add_argument("--markdown-out", default=os.path.join(TOP, "benchmarks", "RESULTS.md"),
                        help="rewritten from the results directory of --out ('' = not)")
    args = parser.parse_args()
    server_bin, client_bin = harness.greeter_bins(args.build_dir, "failover",
                                                  ("greeter_server", "greeter_client"))
    for tool in ("nginx", "haproxy"):
        if shutil.which(tool) is None:
            sys.exit(f"failover: {tool} is not installed (scripts/bootstrap.sh installs it)")

    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lbkit-failover-")
    os.chmod(workdir, 0o755)
    runs = {c.name: [] for c in CASES}
    try:
        for r in range(args.rounds):
            for case in CASES:
                m = run_case(case, server_bin, client_bin, args.duration_ms, workdir)
                runs[case.name].append(m)
                first = m["first_success_in_b_ms"]
                print(f"[{time.monotonic() - started:6.1f}s] round {r + 1}/{args.rounds} "
                      f"{case.name:<22} first success in zone b "
                      f"{'never' if first is None else f'{first:.0f} ms'} after the kill; "
                      f"{m['failed_after_kill']} of {m['rpcs_after_kill']} RPCs failed; "
                      f"{m['ok_in_first_second']} succeeded in the first second",
                      flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    med = harness.median_or_none

    summary = {}
    for name, ms in runs.items():
        summary[name] = {
            "first_success_in_b_ms": med([m["first_success_in_b_ms"] for m in ms]),
            "first_success_in_b_ms_max": max((m["first_success_in_b_ms"] or 0) for m in ms),
            "failed_after_kill": med([m["failed_after_kill"] for m in ms]),
            "failed_after_kill_max": max(m["failed_after_kill"] for m in ms),
            "rpcs_after_kill": med([m["rpcs_after_kill"] for m in ms]),
            "ok_in_first_second": med([m["ok_in_first_second"] for m in ms]),
            "never_reached_b": sum(1 for m in ms if m["first_success_in_b_ms"] is None),
        }
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "rounds": args.rounds, "duration_ms": args.duration_ms,
               "summary": summary, "runs": runs,
               "duration_s": round(time.monotonic() - started, 1)}
    harness.save_results(results, args.out, args.markdown_out)
    print(f"wrote {args.out} in {results['duration_s']} s")


if __name__ == "__main__":
    main()
