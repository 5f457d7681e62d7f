#!/usr/bin/python3
"""Loopback comparison of in-process balancing with gRPC's built-ins and with
a sidecar proxy in the path.

Greeter backends on 127.0.0.1, one closed-loop greeter_client per run. Each
scenario runs every configuration once per round, rounds interleaved, and
reports medians and ranges: QPS, p50/p99/p99.9 latency, CPU per RPC (client,
proxy, servers) and the ratio of each to gRPC's round_robin measured in the
same rounds.

Adding a configuration or a scenario is one entry in CONFIGS or SCENARIOS.

  benchmarks/run_loopback.sh            # full run (about 5 minutes)
  benchmarks/run_loopback.sh --quick    # under 2 minutes
"""

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# What is compared
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    name: str
    kind: str            # "direct": the client balances; "nginx"/"haproxy": a sidecar does
    policy: str = ""     # service-config policy of the client (direct configs)
    balance: str = ""    # the proxy's balancing directive
    single_backend: bool = False  # pick_first: one backend gets everything
    policy_config: str = "{}"     # the policy's JSON config

    def service_config(self):
        if self.kind != "direct":
            return json.dumps({"loadBalancingConfig": [{"pick_first": {}}]})
        return json.dumps({"loadBalancingConfig": [
            {self.policy: json.loads(self.policy_config)}]})


CONFIGS = [
    Config("pick_first", "direct", policy="pick_first", single_backend=True),
    Config("round_robin", "direct", policy="round_robin"),
    Config("lbkit_round_robin", "direct", policy="lbkit_round_robin"),
    Config("lbkit_least_request", "direct", policy="lbkit_least_request"),
    # Linkerd's estimator with Linkerd's defaults, and lbkit's own.
    Config("lbkit_least_request_ewma", "direct", policy="lbkit_least_request",
           policy_config='{"peakEwma": {"decay": "10s", "defaultRtt": "0.030s"}}'),
    Config("lbkit_least_request_latency", "direct", policy="lbkit_least_request",
           policy_config='{"latencyEwma": {}}'),
    Config("nginx_round_robin", "nginx", balance=""),
    Config("nginx_least_conn", "nginx", balance="least_conn;"),
    Config("haproxy_roundrobin", "haproxy", balance="roundrobin"),
    Config("haproxy_leastconn", "haproxy", balance="leastconn"),
]
BASELINE = "round_robin"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    concurrency: int
    rpcs: int            # per run; quick mode divides by 4
    backends: int = 4
    delays_ms: tuple = ()  # per backend index; missing = 0
    quality: bool = False  # report each backend's share


SCENARIOS = [
    Scenario("c1", "1 RPC in flight, 4 backends", concurrency=1, rpcs=10000),
    Scenario("c16", "16 RPCs in flight, 4 backends", concurrency=16, rpcs=40000),
    Scenario("slow1of4", "16 in flight, backend-0 of 4 adds 2 ms",
             concurrency=16, rpcs=20000, delays_ms=(2,), quality=True),
    Scenario("slow2of8", "16 in flight, backends 0 and 1 of 8 add 2 ms",
             concurrency=16, rpcs=20000, backends=8, delays_ms=(2, 2), quality=True),
]


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def proc_cpu_seconds(pids):
    """utime+stime of the given processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / CLK_TCK


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(proc):
    log = getattr(proc, "lbkit_log", None)
    if not log:
        return ""
    with open(log) as f:
        return ": " + f.read()[-2000:]


def wait_for_port(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}{log_tail(proc)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def stop_process(proc, sig):
    """Asks a process to stop with `sig`; kills it after 5 s."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Backend:
    def __init__(self, server_bin, name, delay_ms, logdir):
        self.name = name
        self.log = open(os.path.join(logdir, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            [server_bin, "--port=0", f"--name={name}", f"--delay_ms={delay_ms}"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        prefix = "listening on 127.0.0.1:"
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"{name}: unexpected first line {line!r}")
        self.port = int(line[len(prefix):])

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        stop_process(self.proc, signal.SIGTERM)
        self.log.close()


class Proxy:
    """nginx or haproxy on loopback, in the foreground, from a template."""

    def __init__(self, config, backends, workers, workdir):
        self.config = config
        self.port = free_port()
        self.prefix = tempfile.mkdtemp(prefix=f"{config.name}-", dir=workdir)
        # nginx's workers drop root and must reach their temp directories.
        os.chmod(self.prefix, 0o755)
        if config.kind == "nginx":
            # A backend may carry extra server parameters (e.g. "backup").
            servers = "\n".join(f"    server 127.0.0.1:{b.port} {getattr(b, 'nginx_params', '')};"
                                for b in backends)
            template, out = "nginx.conf.in", "nginx.conf"
        else:
            # An explicit id per backend name: haproxy's consistent hash
            # keys servers by id, which otherwise follows list position.
            servers = "\n".join(f"  server {b.name} 127.0.0.1:{b.port} id "
                                f"{int(b.name.rsplit('-', 1)[1]) + 1} proto h2 "
                                f"{getattr(b, 'haproxy_params', '')}"
                                for b in backends)
            template, out = "haproxy.cfg.in", "haproxy.cfg"
        with open(os.path.join(HERE, template)) as f:
            text = f.read()
        for key, value in (("@PREFIX@", self.prefix), ("@PORT@", str(self.port)),
                           ("@BALANCE@", config.balance), ("@SERVERS@", servers),
                           ("@WORKERS@", str(workers))):
            text = text.replace(key, value)
        path = os.path.join(self.prefix, out)
        with open(path, "w") as f:
            f.write(text)
        self.log = open(os.path.join(self.prefix, "stderr.log"), "w")
        if config.kind == "nginx":
            cmd = ["nginx", "-p", self.prefix, "-c", path]
        else:
            cmd = ["haproxy", "-db", "-f", path]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        self.proc.lbkit_log = self.log.name
        wait_for_port(self.port, self.proc, config.name)

    def pids(self):
        return [self.proc.pid] + children_of(self.proc.pid)

    def stop(self):
        # SIGQUIT is nginx's graceful stop; haproxy stops on SIGTERM.
        stop_process(self.proc, signal.SIGTERM if self.config.kind == "haproxy"
                     else signal.SIGQUIT)
        self.log.close()


# --------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------

def run_client(client_bin, target, config, scenario, rpcs, expect_backends):
    cmd = [client_bin, f"--target={target}",
           f"--service_config={config.service_config()}",
           f"--rpcs={rpcs}", f"--concurrency={scenario.concurrency}",
           f"--expect_backends={expect_backends}", "--deadline_ms=5000",
           "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"greeter_client failed ({proc.returncode}): {err}")
    report = json.loads(out)
    return report


def measure(client_bin, target, config, scenario, rpcs, backends, proxy):
    server_pids = [p for b in backends for p in b.pids()]
    proxy_pids = proxy.pids() if proxy else []
    server_cpu0 = proc_cpu_seconds(server_pids)
    proxy_cpu0 = proc_cpu_seconds(proxy_pids)
    expect = 1 if config.single_backend else len(backends)
    report = run_client(client_bin, target, config, scenario, rpcs, expect)
    server_cpu = proc_cpu_seconds(server_pids) - server_cpu0
    proxy_cpu = proc_cpu_seconds(proxy_pids) - proxy_cpu0
    ok = max(1, report["ok"])
    # The client reports the CPU of its measured phase; the servers' and the
    # proxy's are read around the whole client run, warm-up RPCs included
    # (a few dozen, next to thousands measured).
    client_cpu = report["cpu_us"] / 1e6
    return {
        "qps": report["qps"],
        "p50_us": report["latency_us"]["p50"],
        "p99_us": report["latency_us"]["p99"],
        "p999_us": report["latency_us"]["p999"],
        "errors": sum(report["errors"].values()),
        "rpcs": report["rpcs"],
        "cpu_us_per_rpc_client": 1e6 * client_cpu / ok,
        "cpu_us_per_rpc_proxy": 1e6 * proxy_cpu / ok,
        "cpu_us_per_rpc_servers": 1e6 * server_cpu / ok,
        "cpu_us_per_rpc_total": 1e6 * (client_cpu + proxy_cpu + server_cpu) / ok,
        "per_backend": report["per_backend"],
    }


# --------------------------------------------------------------------------
# Runs with an event in the middle (failover.py, outliers.py)
# --------------------------------------------------------------------------

def run_with_events(cmd, events, duration_ms, what, min_after_ms=2000):
    """Runs greeter_client `cmd` (which must have --duration_ms=duration_ms
    and --timeline_ms) and calls each event() of `events`, a list of
    (seconds after the previous one, or after the launch, event), after its
    warm-up. Returns the report and when each event happened, in ms since
    the start of the measurement."""
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    at_unix_ms = []
    try:
        for wait_s, event in events:
            time.sleep(wait_s)
            at_unix_ms.append(time.time() * 1000.0)
            event()
        out, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if client.returncode != 0:
        raise RuntimeError(f"{what}: greeter_client failed: {err[-2000:]}")
    report = json.loads(out)
    offsets = [t - report["timeline"]["start_unix_ms"] for t in at_unix_ms]
    if not 0 < offsets[0] and offsets[-1] < duration_ms - min_after_ms:
        raise RuntimeError(f"{what}: the events ({', '.join(f'{o:.0f}' for o in offsets)} ms "
                           "after the start) missed the measurement window; the warm-up took "
                           "too long")
    return report, offsets


def run_with_event(cmd, event, duration_ms, what, at_s=1.5, min_after_ms=2000):
    """run_with_events() with one event `at_s` seconds after the launch."""
    report, offsets = run_with_events(cmd, [(at_s, event)], duration_ms, what, min_after_ms)
    return report, offsets[0]


def buckets_after(report, offset_ms):
    """(ms from the event to the bucket's end, bucket) for every timeline
    bucket that ends after the event."""
    timeline = report["timeline"]
    bucket_ms = timeline["bucket_ms"]
    for i, bucket in enumerate(timeline["buckets"]):
        end = (i + 1) * bucket_ms
        if end > offset_ms:
            yield end - offset_ms, bucket


# --------------------------------------------------------------------------
# Aggregation and output
# --------------------------------------------------------------------------

def greeter_bins(build_dir, script, names=("greeter_server", "greeter_client",
                                           "greeter_control")):
    """The example binaries a script runs; exits naming the missing one."""
    bins = tuple(os.path.join(build_dir, "examples/greeter", b) for b in names)
    for b in bins:
        if not os.access(b, os.X_OK):
            sys.exit(f"{script}: {b} is missing; build first")
    return bins


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def save_results(results, out, markdown_out):
    """Writes a script's JSON and, unless `markdown_out` is empty,
    RESULTS.md from the JSON in the same directory."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    if markdown_out:
        sys.path.insert(0, os.path.dirname(HERE))
        import render_results
        render_results.write(markdown_out, os.path.dirname(out))

METRICS = ["qps", "p50_us", "p99_us", "p999_us", "cpu_us_per_rpc_client",
           "cpu_us_per_rpc_proxy", "cpu_us_per_rpc_servers", "cpu_us_per_rpc_total",
           "errors"]


def summarize(runs, backend_names):
    summary = {}
    for metric in METRICS:
        values = [r[metric] for r in runs]
        summary[metric] = {"median": statistics.median(values),
                           "min": min(values), "max": max(values)}
    shares = {}
    for name in backend_names:
        values = [100.0 * r["per_backend"].get(name, 0) / max(1, r["rpcs"]) for r in runs]
        shares[name] = statistics.median(values)
    summary["share_pct"] = shares
    return summary


def machine_info(load_before, sidecars=True):
    """The machine a result came from; with the sidecars' versions unless
    sidecars is False (tests/soak/soak.py uses it too)."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "loadavg_before": load_before,
    }
    if sidecars:
        info["nginx"] = subprocess.run(["nginx", "-v"], capture_output=True,
                                       text=True).stderr.strip()
        info["haproxy"] = subprocess.run(["haproxy", "-v"], capture_output=True,
                                         text=True).stdout.splitlines()[0]
    return info


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    scenarios = results["scenarios"]
    fig, axes = plt.subplots(2, len(scenarios), figsize=(5 * len(scenarios), 7.5),
                             squeeze=False)
    for col, sc in enumerate(scenarios):
        names = list(sc["configs"])
        colors = ["#4c72b0" if n.startswith("lbkit") else
                  "#999999" if sc["configs"] and (n in ("pick_first", "round_robin"))
                  else "#dd8452" for n in names]
        for row, (metric, label) in enumerate((("qps", "QPS"), ("p99_us", "p99 (us)"))):
            ax = axes[row][col]
            med = [sc["configs"][n][metric]["median"] for n in names]
            lo = [m - sc["configs"][n][metric]["min"] for m, n in zip(med, names)]
            hi = [sc["configs"][n][metric]["max"] - m for m, n in zip(med, names)]
            ax.bar(range(len(names)), med, yerr=[lo, hi], color=colors, capsize=3)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
            ax.set_ylabel(label)
            if row == 0:
                ax.set_title(f"{sc['name']}: {sc['description']}", fontsize=9)
    fig.suptitle(f"lbkit loopback benchmark, {results['machine']['date']} "
                 f"(blue: lbkit, grey: gRPC built-in, orange: sidecar proxy)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_outputs(results, args, write_json=True):
    os.makedirs(args.results_dir, exist_ok=True)
    json_out = os.path.join(args.results_dir, f"{args.name}.json")
    if write_json:
        with open(json_out, "w") as f:
            json.dump(results, f, indent=1)
    chart_out = os.path.join(args.results_dir, f"{args.name}.png")
    if args.ab:
        chart_out = "no chart"
    else:
        chart(results, chart_out)
    sys.path.insert(0, os.path.dirname(HERE))
    import render_results
    render_results.write(args.markdown_out, args.results_dir)
    print(f"wrote {json_out}, {chart_out} and {args.markdown_out} "
          f"in {results['duration_s']} s")


# --------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds and a quarter of the RPCs per run")
    parser.add_argument("--smoke", action="store_true",
                        help="1 round of 200 RPCs per run: checks that every "
                             "configuration works (ctest runs this), measures nothing")
    parser.add_argument("--proxy-workers", type=int, default=2,
                        help="nginx worker processes / haproxy threads (Istio's "
                             "sidecar default concurrency is 2)")
    parser.add_argument("--configs", default="",
                        help="comma-separated subset of: " +
                             ",".join(c.name for c in CONFIGS))
    parser.add_argument("--scenarios", default="",
                        help="comma-separated subset of: " +
                             ",".join(s.name for s in SCENARIOS))
    parser.add_argument("--results-dir", default=os.path.join(TOP, "benchmarks", "results"),
                        help="where loopback.json and loopback.png go")
    parser.add_argument("--markdown-out", default=os.path.join(TOP, "benchmarks", "RESULTS.md"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--name", default="loopback",
                        help="results/NAME.json and NAME.png; RESULTS.md reads loopback and, "
                             "for lbkit_round_robin against round_robin alone (--ab), "
                             "round_robin_ab")
    parser.add_argument("--ab", action="store_true",
                        help="lbkit_round_robin against gRPC round_robin only, at c1 and c16: "
                             "with two configurations a round is short, so the machine drifts "
                             "less between the two (writes results/round_robin_ab.json)")
    parser.add_argument("--render-only", action="store_true",
                        help="redraw the chart and RESULTS.md from the existing JSON")
    args = parser.parse_args()
    if args.ab:
        args.name, args.configs, args.scenarios = "round_robin_ab", "lbkit_round_robin", "c1,c16"
    if args.render_only:
        with open(os.path.join(args.results_dir, f"{args.name}.json")) as f:
            write_outputs(json.load(f), args, write_json=False)
        return

    rounds = 3 if args.quick and args.rounds == 5 else args.rounds
    rpc_scale = 0.25 if args.quick else 1.0
    if args.smoke:
        rounds, rpc_scale = 1, 0.0  # max(200, ...) below
    configs = [c for c in CONFIGS
               if not args.configs or c.name in args.configs.split(",")]
    if BASELINE not in [c.name for c in configs]:
        configs.insert(0, next(c for c in CONFIGS if c.name == BASELINE))
    scenarios = [s for s in SCENARIOS
                 if not args.scenarios or s.name in args.scenarios.split(",")]
    server_bin = os.path.join(args.build_dir, "examples/greeter/greeter_server")
    client_bin = os.path.join(args.build_dir, "examples/greeter/greeter_client")
    for b in (server_bin, client_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"run_loopback: {b} is missing; build first (benchmarks/run_loopback.sh does)")
    for tool in ("nginx", "haproxy"):
        if any(c.kind == tool for c in configs) and shutil.which(tool) is None:
            sys.exit(f"run_loopback: {tool} is not installed (scripts/bootstrap.sh installs it)")

    rng = random.Random(args.seed)
    load_before = list(os.getloadavg())
    workdir = tempfile.mkdtemp(prefix="lbkit-loopback-")
    os.chmod(workdir, 0o755)
    results = {"machine": machine_info([round(x, 2) for x in load_before]),
               "rounds": rounds, "quick": args.quick,
               "proxy_workers": args.proxy_workers, "scenarios": []}
    started = time.monotonic()
    failures = []
    try:
        for sc in scenarios:
            rpcs = max(200, int(sc.rpcs * rpc_scale))
            backends = [Backend(server_bin, f"backend-{i}",
                                sc.delays_ms[i] if i < len(sc.delays_ms) else 0, workdir)
                        for i in range(sc.backends)]
            proxies = {}
            try:
                for c in configs:
                    if c.kind != "direct":
                        proxies[c.name] = Proxy(c, backends, args.proxy_workers, workdir)
                direct_target = "ipv4:" + ",".join(f"127.0.0.1:{b.port}" for b in backends)
                runs = {c.name: [] for c in configs}
                for r in range(rounds):
                    order = list(configs)
                    rng.shuffle(order)  # no configuration always runs first or last
                    for c in order:
                        proxy = proxies.get(c.name)
                        target = (f"ipv4:127.0.0.1:{proxy.port}" if proxy else direct_target)
                        m = measure(client_bin, target, c, sc, rpcs, backends, proxy)
                        runs[c.name].append(m)
                        if m["errors"] or m["rpcs"] != rpcs:
                            failures.append(f"{sc.name}/{c.name}: {m['errors']} errors")
                        print(f"[{time.monotonic() - started:6.1f}s] {sc.name} round {r + 1}/"
                              f"{rounds} {c.name:<20} qps {m['qps']:>8.0f}  p99 "
                              f"{m['p99_us']:>7.0f} us  cpu/rpc {m['cpu_us_per_rpc_total']:6.1f} "
                              f"us  errors {m['errors']}", flush=True)
            finally:
                for p in proxies.values():
                    p.stop()
                for b in backends:
                    b.stop()
            names = [b.name for b in backends]
            results["scenarios"].append({
                "name": sc.name, "description": sc.description,
                "concurrency": sc.concurrency, "rpcs_per_run": rpcs,
                "delays_ms": list(sc.delays_ms), "quality": sc.quality,
                "backend_names": names,
                "configs": {c.name: summarize(runs[c.name], names) for c in configs},
                "runs": runs,
            })
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["duration_s"] = round(time.monotonic() - started, 1)

    write_outputs(results, args)
    if failures:
        sys.exit("run_loopback: RPCs failed in: " + "; ".join(failures))


if __name__ == "__main__":
    main()
