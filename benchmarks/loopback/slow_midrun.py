#!/usr/bin/python3
"""A backend that turns slow mid-run, and back: how fast each policy moves
calls away from it and how fast it gives them back.

Four greeter backends, a closed-loop greeter_client with 16 calls in flight
for --duration-ms, timeline in 100 ms buckets. Some 2.5 s after launch
backend-0 starts adding 2 ms to every call (greeter_control --delay_ms=2);
--slow-ms later it is fast again. From the timeline, per configuration:
  lose_ms    from the slowdown to the end of the first bucket whose
             three-bucket average share of backend-0 is at most 5% (a fifth
             of a fair 25%)
  regain_ms  from the recovery to the end of the first bucket whose
             three-bucket average share is at least 20% (four fifths of fair)
  slow share and p99 while slow; the share and p99 of every bucket (plotted
  in results/slow_midrun.png)

Compared: lbkit_least_request with latencyEwma (lbkit's latency-aware mode),
with peakEwma (Linkerd's estimator and defaults), without either, and gRPC's
round_robin.

  benchmarks/loopback/slow_midrun.py               # 3 rounds, about 2 minutes
  benchmarks/loopback/slow_midrun.py --rounds=1
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_loopback as harness  # noqa: E402

TOP = harness.TOP
BUCKET_MS = 100
LOSE_PCT, REGAIN_PCT = 5.0, 20.0

CONFIGS = {
    "lbkit_least_request_latency": {"lbkit_least_request": {"latencyEwma": {}}},
    "lbkit_least_request_ewma": {"lbkit_least_request": {
        "peakEwma": {"decay": "10s", "defaultRtt": "0.030s"}}},
    "lbkit_least_request": {"lbkit_least_request": {}},
    "round_robin": {"round_robin": {}},
}
# The decay each configuration's estimate recovers over (None: no estimate).
DECAY_MS = {"lbkit_least_request_latency": 1000, "lbkit_least_request_ewma": 10000,
            "lbkit_least_request": None, "round_robin": None}


def set_delay(control_bin, backend, delay_ms):
    subprocess.run([control_bin, f"--target=127.0.0.1:{backend.port}",
                    f"--delay_ms={delay_ms}"], check=True, capture_output=True, timeout=10)


def rolling(values, width=3):
    return [statistics.mean(values[i:i + width]) for i in range(len(values) - width + 1)]


def analyse(report, slow_at_ms, fast_at_ms):
    """Per-bucket share and p99, and the lose/regain times."""
    buckets = report["timeline"]["buckets"]
    shares, p99s = [], []
    for b in buckets:
        total = sum(b["ok"].values())
        shares.append(100.0 * b["ok"].get("backend-0", 0) / total if total else 0.0)
        p99s.append(b.get("p99_us", 0.0))
    ends = [(i + 1) * BUCKET_MS for i in range(len(buckets))]

    def first_crossing(since_ms, until_ms, test):
        # Buckets wholly after `since_ms`; the three-bucket average from i on.
        idx = [i for i, e in enumerate(ends) if e - BUCKET_MS >= since_ms and e <= until_ms]
        if len(idx) < 3:
            return None
        avg = rolling([shares[i] for i in idx])
        for k, a in enumerate(avg):
            if test(a):
                return ends[idx[k]] - since_ms
        return None

    end_ms = ends[-1] if ends else 0
    slow_idx = [i for i, e in enumerate(ends) if e - BUCKET_MS >= slow_at_ms + 1000
                and e <= fast_at_ms]
    return {
        "lose_ms": first_crossing(slow_at_ms, fast_at_ms, lambda a: a <= LOSE_PCT),
        "regain_ms": first_crossing(fast_at_ms, end_ms, lambda a: a >= REGAIN_PCT),
        # From 1 s after the slowdown to the recovery: the settled state.
        "slow_share_pct": statistics.mean(shares[i] for i in slow_idx) if slow_idx else None,
        "slow_p99_us": statistics.median(p99s[i] for i in slow_idx) if slow_idx else None,
        "timeline": {"bucket_ms": BUCKET_MS, "share_pct": shares, "p99_us": p99s,
                     "slow_at_ms": slow_at_ms, "fast_at_ms": fast_at_ms},
    }


def run_case(name, policy, bins, args, workdir):
    server_bin, client_bin, control_bin = bins
    backends = [harness.Backend(server_bin, f"backend-{i}", 0, workdir) for i in range(4)]
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{b.port}" for b in backends)
        cmd = [client_bin, f"--target={target}",
               f"--service_config={json.dumps({'loadBalancingConfig': [policy]})}",
               "--rpcs=100000000", f"--duration_ms={args.duration_ms}",
               f"--timeline_ms={BUCKET_MS}", "--concurrency=16", "--expect_backends=4",
               "--deadline_ms=5000", "--warmup_ms=1000", "--json"]
        report, (slow_at, fast_at) = harness.run_with_events(
            cmd, [(2.5, lambda: set_delay(control_bin, backends[0], 2)),
                  (args.slow_ms / 1000.0, lambda: set_delay(control_bin, backends[0], 0))],
            args.duration_ms, name)
    finally:
        for b in backends:
            b.stop()
    result = analyse(report, slow_at, fast_at)
    result["qps"] = report["qps"]
    return result


def chart(summary, runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (share_ax, p99_ax) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for name, rs in runs.items():
        # The first round's timeline, aligned on the slowdown.
        t = rs[0]["timeline"]
        xs = [((i + 1) * t["bucket_ms"] - t["slow_at_ms"]) / 1000.0
              for i in range(len(t["share_pct"]))]
        share_ax.plot(xs, t["share_pct"], label=name, linewidth=1.2)
        p99_ax.plot(xs, [p / 1000.0 for p in t["p99_us"]], label=name, linewidth=1.2)
    t = next(iter(runs.values()))[0]["timeline"]
    for ax in (share_ax, p99_ax):
        ax.axvline(0, color="#999999", linestyle="--", linewidth=0.8)
        ax.axvline((t["fast_at_ms"] - t["slow_at_ms"]) / 1000.0, color="#999999",
                   linestyle="--", linewidth=0.8)
    share_ax.axhline(25, color="#cccccc", linewidth=0.8)
    share_ax.set_ylabel("backend-0 share of calls (%)")
    p99_ax.set_ylabel("p99 per 100 ms (ms)")
    p99_ax.set_xlabel("seconds since backend-0 turned slow (dashed: slow, fast again)")
    share_ax.legend(fontsize=8)
    share_ax.set_title("A backend turns slow (+2 ms) mid-run and back; 16 in flight, 4 backends",
                       fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration-ms", type=int, default=9000)
    parser.add_argument("--slow-ms", type=int, default=3000)
    parser.add_argument("--configs", default="", help="comma-separated subset of: " +
                        ",".join(CONFIGS))
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results",
                                                      "slow_midrun.json"))
    parser.add_argument("--markdown-out", default=os.path.join(TOP, "benchmarks", "RESULTS.md"),
                        help="rewritten from the results directory of --out ('' = not)")
    args = parser.parse_args()
    bins = harness.greeter_bins(args.build_dir, "slow_midrun")
    configs = {n: p for n, p in CONFIGS.items()
               if not args.configs or n in args.configs.split(",")}

    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="lbkit-slow-midrun-")
    runs = {n: [] for n in configs}
    try:
        for r in range(args.rounds):
            for name, policy in configs.items():
                m = run_case(name, policy, bins, args, workdir)
                runs[name].append(m)
                fmt = lambda v: "never" if v is None else f"{v:.0f} ms"
                print(f"[{time.monotonic() - started:6.1f}s] round {r + 1}/{args.rounds} "
                      f"{name:<28} lost its share after {fmt(m['lose_ms'])}, regained after "
                      f"{fmt(m['regain_ms'])}; slow share {m['slow_share_pct']:.1f}%, "
                      f"p99 while slow {m['slow_p99_us']:.0f} us", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    med = harness.median_or_none
    summary = {}
    for name, rs in runs.items():
        summary[name] = {key: med(m[key] for m in rs)
                         for key in ("lose_ms", "regain_ms", "slow_share_pct", "slow_p99_us",
                                     "qps")}
        summary[name]["never_lost"] = sum(m["lose_ms"] is None for m in rs)
        summary[name]["never_regained"] = sum(m["regain_ms"] is None for m in rs)
        summary[name]["decay_ms"] = DECAY_MS.get(name)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "rounds": args.rounds, "duration_ms": args.duration_ms, "slow_ms": args.slow_ms,
               "bucket_ms": BUCKET_MS, "lose_pct": LOSE_PCT, "regain_pct": REGAIN_PCT,
               "summary": summary, "runs": runs,
               "duration_s": round(time.monotonic() - started, 1)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    chart(summary, runs, os.path.join(os.path.dirname(args.out), "slow_midrun.png"))
    harness.save_results(results, args.out, args.markdown_out)
    print(f"wrote {args.out} in {results['duration_s']} s")


if __name__ == "__main__":
    main()
