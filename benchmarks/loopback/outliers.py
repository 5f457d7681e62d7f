#!/usr/bin/python3
"""Outlier ejection on loopback: how many calls a bad backend costs before
the client stops sending it traffic.

Four greeter backends, a closed-loop greeter_client with 16 calls in flight
and 200 ms deadlines for --duration-ms. Early in the run backend-0 goes bad:
  error   it starts failing every call with UNAVAILABLE (greeter_control)
  freeze  it is SIGSTOPped: it accepts connections and answers nothing, so
          its calls time out (the case users fear most)
From the client's timeline (10 ms buckets): the calls that failed after the
event and the time of the last failure (after which the backend was out).

Compared: lbkit_outlier_ejection (consecutive5xxErrors 5), gRPC's
outlier_detection_experimental (failure percentage 50%, 1 s interval,
request volume 10) and plain round_robin (no ejection).

  benchmarks/loopback/outliers.py                  # 3 rounds
  benchmarks/loopback/outliers.py --rounds=1       # quick
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import shutil
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_loopback as harness  # noqa: E402

TOP = harness.TOP

CONFIGS = {
    "lbkit_outlier_ejection": {"lbkit_outlier_ejection": {
        "consecutive5xxErrors": 5, "baseEjectionTime": "30s",
        "childPolicy": [{"lbkit_round_robin": {}}]}},
    "grpc_outlier_detection": {"outlier_detection_experimental": {
        "interval": "1s", "baseEjectionTime": "30s", "maxEjectionPercent": 25,
        "failurePercentageEjection": {"threshold": 50, "enforcementPercentage": 100,
                                      "minimumHosts": 4, "requestVolume": 10},
        "childPolicy": [{"round_robin": {}}]}},
    "round_robin": {"round_robin": {}},
}
SCENARIOS = ["error", "freeze"]


def run_case(scenario, name, policy, bins, duration_ms, workdir):
    server_bin, client_bin, control_bin = bins
    backends = [harness.Backend(server_bin, f"backend-{i}", 0, workdir) for i in range(4)]
    try:
        def event():
            if scenario == "freeze":
                backends[0].proc.send_signal(signal.SIGSTOP)
            else:
                subprocess.run([control_bin, f"--target=127.0.0.1:{backends[0].port}",
                                "--error_rate=1", "--error_code=UNAVAILABLE"],
                               check=True, capture_output=True, timeout=10)
        target = "ipv4:" + ",".join(f"127.0.0.1:{b.port}" for b in backends)
        cmd = [client_bin, f"--target={target}",
               f"--service_config={json.dumps({'loadBalancingConfig': [policy]})}",
               "--rpcs=10000000", f"--duration_ms={duration_ms}", "--timeline_ms=10",
               "--concurrency=16", "--expect_backends=4", "--deadline_ms=200", "--json"]
        report, offset = harness.run_with_event(cmd, event, duration_ms, f"{scenario}/{name}")
    finally:
        if scenario == "freeze":
            backends[0].proc.send_signal(signal.SIGCONT)
        for b in backends:
            b.stop()
    failed = ok = 0
    last_failure = 0.0
    for since, bucket in harness.buckets_after(report, offset):
        failed += bucket["failed"]
        ok += sum(bucket["ok"].values())
        if bucket["failed"]:
            last_failure = since
    after_s = (duration_ms - offset) / 1000.0
    return {"failed_after_event": failed, "last_failure_ms": last_failure,
            "qps_after_event": ok / after_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-ms", type=int, default=4000)
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results",
                                                      "outliers.json"))
    parser.add_argument("--markdown-out", default=os.path.join(TOP, "benchmarks", "RESULTS.md"),
                        help="rewritten from the results directory of --out ('' = not)")
    args = parser.parse_args()
    bins = harness.greeter_bins(args.build_dir, "outliers")

    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lbkit-outliers-")
    runs = {s: {n: [] for n in CONFIGS} for s in SCENARIOS}
    try:
        for r in range(args.rounds):
            for scenario in SCENARIOS:
                for name, policy in CONFIGS.items():
                    m = run_case(scenario, name, policy, bins, args.duration_ms, workdir)
                    runs[scenario][name].append(m)
                    print(f"[{time.monotonic() - started:6.1f}s] round {r + 1}/{args.rounds} "
                          f"{scenario:<6} {name:<24} {m['failed_after_event']:>5} calls failed, "
                          f"the last {m['last_failure_ms']:.0f} ms after the event; "
                          f"{m['qps_after_event']:.0f} QPS after it", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary = {
        s: {n: {key: statistics.median(m[key] for m in ms)
                for key in ("failed_after_event", "last_failure_ms", "qps_after_event")}
            for n, ms in by.items()}
        for s, by in runs.items()}
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "rounds": args.rounds, "duration_ms": args.duration_ms, "summary": summary,
               "runs": runs, "duration_s": round(time.monotonic() - started, 1)}
    harness.save_results(results, args.out, args.markdown_out)
    print(f"wrote {args.out} in {results['duration_s']} s")


if __name__ == "__main__":
    main()
