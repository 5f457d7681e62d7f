#!/usr/bin/python3
"""Slow start on loopback: a fourth backend added under load, and its share
of the calls over time.

Four greeter backends; the lbkit-file endpoints file lists three. A
closed-loop greeter_client (8 in flight) runs; once the first three are
past their own ramp (the window plus 2 s), the file is rewritten with the
fourth. From the client's timeline (250 ms
buckets) the harness reports the newcomer's share per second after the
change, with `slowStart` (window --window-s) and without, and plots both
curves (benchmarks/results/slow_start.png) against Envoy's formula.

  benchmarks/loopback/slow_start.py                 # 3 rounds
  benchmarks/loopback/slow_start.py --rounds=1      # quick
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_loopback as harness  # noqa: E402

TOP = harness.TOP
NEWCOMER = "backend-3"


def endpoints_file(path, backends):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"endpoints": [{"address": f"127.0.0.1:{b.port}"} for b in backends]}, f)
    os.rename(tmp, path)


def expected_share(t_s, window_s, n_old=3, min_percent=10.0):
    """Envoy's slow start, aggression 1: factor f against n_old at weight 1."""
    if t_s >= window_s:
        f = 1.0
    else:
        f = max(min_percent / 100.0, max(t_s, 1.0) / window_s)
    return 100.0 * f / (n_old + f)


def run_case(policy, window_s, server_bin, client_bin, duration_ms, workdir):
    backends = [harness.Backend(server_bin, f"backend-{i}", 0, workdir) for i in range(4)]
    try:
        path = os.path.join(workdir, f"{policy}-{window_s}-endpoints.json")
        endpoints_file(path, backends[:3])
        config = {policy: {"slowStart": {"window": f"{window_s}s"}} if window_s else {}}
        cmd = [client_bin, f"--target=lbkit-file://{path}",
               f"--service_config={json.dumps({'loadBalancingConfig': [config]})}",
               "--rpcs=100000000", f"--duration_ms={duration_ms}", "--timeline_ms=250",
               "--concurrency=8", "--expect_backends=3", "--deadline_ms=5000", "--json"]
        report, offset = harness.run_with_event(
            cmd, lambda: endpoints_file(path, backends), duration_ms,
            f"{policy} window {window_s}", at_s=window_s + 2.0, min_after_ms=window_s * 1000 + 3000)
    finally:
        for b in backends:
            b.stop()
    # The newcomer's share in each second after the change.
    per_second = {}
    failed = 0
    for since, bucket in harness.buckets_after(report, offset):
        second = int((since - 1) // 1000)
        ok = bucket["ok"]
        s = per_second.setdefault(second, [0, 0])
        s[0] += ok.get(NEWCOMER, 0)
        s[1] += sum(ok.values())
        failed += bucket["failed"]
    curve = [round(100.0 * n / total, 2) if total else None
             for _, (n, total) in sorted(per_second.items())]
    return {"share_per_second": curve, "failed": failed, "qps": report["qps"]}


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    window = results["window_s"]
    for name, summary in results["summary"].items():
        curve = summary["share_per_second"]
        ax.plot([i + 0.5 for i in range(len(curve))], curve, marker="o", label=name)
    xs = [i / 10 for i in range(0, 10 * (len(curve) + 1))]
    ax.plot(xs, [expected_share(x, window) for x in xs], linestyle="--", color="grey",
            label=f"Envoy's formula, window {window} s")
    ax.axhline(25, color="lightgrey", linewidth=0.8)
    ax.set_xlabel("seconds since the fourth backend was added")
    ax.set_ylabel("its share of the calls (%)")
    ax.set_title("Slow start on loopback: a fourth backend added under load")
    ax.legend(loc="lower right")
    ax.set_ylim(0, 35)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window-s", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results",
                                                      "slow_start.json"))
    args = parser.parse_args()
    server_bin = os.path.join(args.build_dir, "examples/greeter/greeter_server")
    client_bin = os.path.join(args.build_dir, "examples/greeter/greeter_client")
    for b in (server_bin, client_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"slow_start: {b} is missing; build first")
    duration_ms = (2 * args.window_s + 8) * 1000
    cases = [("lbkit_round_robin", args.window_s), ("lbkit_least_request", args.window_s),
             ("lbkit_round_robin", 0)]
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lbkit-slow-start-")
    os.chmod(workdir, 0o755)
    runs = {}
    try:
        for r in range(args.rounds):
            for policy, window in cases:
                name = f"{policy} " + (f"slowStart {window} s" if window else "no slow start")
                m = run_case(policy, window, server_bin, client_bin, duration_ms, workdir)
                runs.setdefault(name, []).append(m)
                print(f"[{time.monotonic() - started:6.1f}s] round {r + 1}/{args.rounds} "
                      f"{name:<40} share per second: "
                      + ", ".join("-" if v is None else f"{v:.1f}%" for v in m["share_per_second"])
                      + f"; {m['failed']} failed", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = {}
    for name, ms in runs.items():
        length = min(len(m["share_per_second"]) for m in ms)
        summary[name] = {
            "share_per_second": [
                round(statistics.median(m["share_per_second"][i] or 0 for m in ms), 2)
                for i in range(length)],
            "failed": sum(m["failed"] for m in ms),
        }
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "rounds": args.rounds, "window_s": args.window_s,
               "expected_share_per_second": [round(expected_share(i + 0.5, args.window_s), 2)
                                             for i in range(args.window_s + 5)],
               "summary": summary, "runs": runs,
               "duration_s": round(time.monotonic() - started, 1)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    chart(results, os.path.splitext(args.out)[0] + ".png")
    print(f"wrote {args.out} and its chart in {results['duration_s']} s")


if __name__ == "__main__":
    main()
