#!/usr/bin/python3
"""Chaos soak of lbkit (issue #11): a fixed-rate client through lbkit while
the backends misbehave on a seeded random schedule.

Six greeter_servers on 127.0.0.1 in two zones of one region (s0..s2 in r1/a,
the client's zone; s3..s5 in r1/b) behind an lbkit-file endpoints file, and
lbkit_soak_client sending SayHello open loop at --rate over

  lbkit_outlier_ejection (consecutive errors + failure percentage)
    -> lbkit_locality (client in r1/a: zone b gets only the spill-over)
      -> lbkit_least_request
  + healthCheckConfig (gRPC's health watch) + a retryPolicy on UNAVAILABLE.

Between the warm-up and the settle period the chaos schedule, drawn from
--seed before anything starts (the same seed gives the same schedule),
kills servers (SIGKILL, or SIGTERM with a drain) and restarts them on the
same port, freezes and thaws them (SIGSTOP/SIGCONT), flips their health
(SIGUSR1/SIGUSR2 or greeter_control), injects error rates (UNAVAILABLE,
which the retry policy retries, or INTERNAL, which it does not), and
rewrites the endpoints file atomically: removes, adds back, reweights,
adds an address nobody listens on, and now and then writes garbage that
lbkit-file must ignore. At most 2 servers are disturbed at once and at
least 2 listed, undisturbed servers remain at all times. The settle period
restores the original file and every server.

Asserted (any failure makes the exit status 1, saying what failed):
  - the client exits 0 and accounts for every RPC (sent == ok + failed, none
    outstanding, none shed), no process crashed, and no sanitizer report
    appears in any process's stderr;
  - failed RPCs only in the windows the schedule predicts (WINDOWS below);
  - live heap, RSS, threads and open fds flat after warm-up (LEAK_* below);
  - the leaf policies' endpoint count follows the file, and at the end the
    channel holds exactly one subchannel per endpoint.
Writes report.json and soak.png (throughput, errors, p99, RSS and fds over
time, events marked) into --out.

  tests/soak/soak.py --build-dir=build --duration=60 --rate=1000 --seed=1
  scripts/soak.sh --duration=600            # the documented 10-minute soak
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CLK_TCK = os.sysconf("SC_CLK_TCK")

ZONES = {"a": ["s0", "s1", "s2"], "b": ["s3", "s4", "s5"]}
CLIENT_LOCALITY = "r1/a"
DRAIN_MS = 300           # greeter_server --drain_ms: what SIGTERM costs before shutdown
SERVER_SHUTDOWN_S = 1.0  # greeter_server's kShutdownGrace
MAX_DISTURBED = 2        # servers under a fault at once
MIN_GOOD = 2             # listed and undisturbed servers, at all times

# Failure windows: an event that may fail calls opens [start, end + grace];
# a failed call seen outside every window fails the run. Graces, with D the
# RPC deadline:
#   freeze         end + D + 1 s: calls sent to the frozen server before it
#                  was ejected (and again each time its ejection runs out
#                  while still frozen) end DEADLINE_EXCEEDED up to D after
#                  the thaw; 1 s for a loaded machine.
#   errors         end + 1 s: injected errors are immediate; a call that
#                  got one is retried (UNAVAILABLE) within 0.3 s; INTERNAL
#                  is not retried and fails at once.
#   kill (SIGKILL) start + D + 1 s: calls in flight on the dying connection
#                  are retried (UNAVAILABLE), so few or none should fail;
#                  a retry racing the connection's end may still lose.
#   kill (SIGTERM) start + drain + 1 s shutdown grace + D + 1 s: gRPC's
#                  shutdown CANCELs calls not yet on a handler thread, which
#                  the retry policy does not retry.
# Predicted to fail nothing, so they open no window: restarts, health flips
# (the health watch takes the server out; calls already on it finish), and
# every endpoints-file rewrite, garbage included.
GRACE_S = {"freeze": "D+1", "errors": "1", "kill9": "D+1", "kill15": "drain+1+D+1"}

# Leak check. Memory and threads legitimately step up whenever calls in
# flight reach a new high: a frozen server holds up to a second's worth of
# calls (seen: 2,555 at once at 2,000 RPC/s), each with its arena and retry
# buffer; glibc keeps the freed arena memory (RSS +80 MiB for good, in one
# 600 s run), gRPC's executor adds threads under the burst, and per-thread
# caches keep a little live heap (+0.4 KiB per call of the new high). None of
# that is a leak: a leak grows with the calls made, not with the most ever in
# flight. So the check takes the tail of the run after the last new high of
# calls in flight (at least the last 10 s of sending, never the first fifth,
# which is warm-up; from 5 s after that high, when its calls have ended)
# and compares the median of its first 3 seconds with the
# median of its last 3:
#   live heap (the allocator's bytes in use: mallinfo2, or ASan's allocator):
#        +1 MiB or +5%. 64 bytes leaked per RPC is +1.8 MiB over a 30 s tail
#        at 1,000 RPC/s and +37 MiB over a 300 s tail at 2,000 RPC/s; tails
#        without a leak moved by -0.1 to +0.2 MiB (60 s and 600 s runs).
#   RSS: +4 MiB or +5%.
#   threads: +2.
# fds must not step up at all (+3 for connections in progress, compared
# between the second and the last fifth, and at the end at most the warm-up
# count): a file descriptor per connection or per resolver update that is
# never closed shows there. The second-fifth and last-fifth medians of every
# series are reported too.
LEAK_TAIL_MIN_S = 10
LEAK_HEAP_FRACTION = 0.05
LEAK_HEAP_MIN_KB = 1024
LEAK_RSS_FRACTION = 0.05
LEAK_RSS_MIN_KB = 4 * 1024
LEAK_FDS = 3
LEAK_THREADS = 2
ENDPOINT_LAG_S = 2   # seconds after a rewrite before the count must match

SANITIZER_MARKERS = ["ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer"]


def service_config(deadline_ms):
    del deadline_ms  # the client sets each RPC's deadline itself
    return {
        "loadBalancingConfig": [{"lbkit_outlier_ejection": {
            "consecutive5xxErrors": 5,
            "interval": "1s",
            "baseEjectionTime": "2s",
            "maxEjectionTime": "10s",
            "maxEjectionPercent": 50,
            "failurePercentageEjection": {"threshold": 30, "enforcementPercentage": 100,
                                          "minimumHosts": 3, "requestVolume": 50},
            "childPolicy": [{"lbkit_locality": {
                "locality": CLIENT_LOCALITY,
                "childPolicy": [{"lbkit_least_request": {}}]}}]}}],
        "healthCheckConfig": {"serviceName": ""},
        "methodConfig": [{
            "name": [{"service": "lbkit.examples.Greeter"}],
            "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.01s",
                            "maxBackoff": "0.1s", "backoffMultiplier": 2,
                            "retryableStatusCodes": ["UNAVAILABLE"]}}],
    }


def zone_of(name):
    return "a" if name in ZONES["a"] else "b"


def log(msg):
    print(f"soak: {msg}", flush=True)


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def pick_port(rng, taken):
    """A free port below the ephemeral range (32768+), so that no outgoing
    connection can take it while its server is down between kill and
    restart."""
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port in 20000-32000")


def proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


class Server:
    def __init__(self, bins, name, port, logdir):
        self.bins, self.name, self.port, self.logdir = bins, name, port, logdir
        self.zone = zone_of(name)
        self.proc = None
        self.starts = 0
        self.frozen = False
        self.exits = []   # (how it was stopped, return code)
        self.cpu_s = 0.0

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.starts += 1
        err = open(os.path.join(self.logdir, f"{self.name}.stderr.log"), "a")
        for attempt in range(10):
            proc = subprocess.Popen(
                [self.bins["server"], f"--port={self.port}", f"--name={self.name}",
                 f"--drain_ms={DRAIN_MS}"],
                stdout=subprocess.PIPE, stderr=err, text=True)
            line = proc.stdout.readline().strip()
            if line == f"listening on 127.0.0.1:{self.port}":
                self.proc = proc
                err.close()
                return
            proc.wait(timeout=10)
            time.sleep(0.2)  # the port is momentarily busy; try again
        err.close()
        raise RuntimeError(f"{self.name}: cannot listen on {self.address} again")

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self, sig):
        """Stops the server with `sig`; returns when it has exited."""
        self.cpu_s += proc_cpu_seconds(self.proc.pid)
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            self.exits.append(("timeout", rc))
            return
        self.exits.append((signal.Signals(sig).name, rc))
        self.proc.stdout.close()
        self.proc = None

    def control(self, *flags):
        r = subprocess.run([self.bins["control"], f"--target={self.address}", *flags],
                           capture_output=True, text=True, timeout=15)
        if r.returncode != 0:
            raise RuntimeError(f"greeter_control {self.name} {flags}: {r.stderr.strip()}")

    def stop_for_good(self):
        if self.proc is None:
            return None
        if self.frozen:
            self.proc.send_signal(signal.SIGCONT)
            self.frozen = False
        self.cpu_s += proc_cpu_seconds(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "killed after 10 s"
        self.proc.stdout.close()
        self.proc = None
        return rc


# --------------------------------------------------------------------------
# The endpoints file
# --------------------------------------------------------------------------

GARBAGE = [
    ("truncated", lambda good: good[: len(good) // 2]),
    ("empty", lambda good: ""),
    ("not json", lambda good: "endpoints: all of them, please\n"),
    ("weight 0", lambda good: good.replace('"weight": 1', '"weight": 0', 1)
     if '"weight": 1' in good else '{"endpoints": [{"address": "127.0.0.1:1", "weight": 0}]}'),
    ("duplicate address", lambda good: json.dumps(
        {"endpoints": json.loads(good)["endpoints"] + json.loads(good)["endpoints"][:1]})),
    ("no address", lambda good: '{"endpoints": [{"locality": {"region": "r1"}}]}'),
    ("binary", lambda good: "\x00\x01\x7f\xff{{[[\n"),
]


def endpoints_json(servers, listed, weights, dead_port):
    entries = []
    for name in sorted(listed):
        s = servers[name]
        entries.append({"address": s.address,
                        "locality": {"region": "r1", "zone": s.zone},
                        "weight": weights.get(name, 1)})
    if dead_port is not None:
        entries.append({"address": f"127.0.0.1:{dead_port}",
                        "locality": {"region": "r1", "zone": "b"}, "weight": 1})
    return json.dumps({"endpoints": entries}, indent=1) + "\n"


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", errors="surrogateescape") as f:
        f.write(text)
    os.rename(tmp, path)


# --------------------------------------------------------------------------
# The schedule: drawn up front from the seed alone
# --------------------------------------------------------------------------

def plan(seed, chaos_start, chaos_end):
    """Returns planned events, each a dict with t (s from the client's start),
    kind, server, duration and parameters; the same seed gives the same plan."""
    rng = random.Random(seed)
    names = [n for z in ZONES.values() for n in z]
    busy_until = {n: 0.0 for n in names}       # disturbed until
    listed = set(names)
    dead_listed = False
    events = []
    t = chaos_start
    while True:
        t += rng.uniform(0.3, 1.5)
        if t >= chaos_end - 1.0:
            break
        disturbed = {n for n in names if busy_until[n] > t}
        good = [n for n in names if n in listed and n not in disturbed]
        kind = rng.choices(["kill", "freeze", "health", "errors", "file"],
                           weights=[2, 2, 2, 2, 3])[0]
        if kind != "file":
            candidates = [n for n in names if n not in disturbed and
                          (n not in listed or len(good) - 1 >= MIN_GOOD)]
            duration = min(rng.uniform(1.0, 4.0), chaos_end - 0.5 - t)
            if len(disturbed) >= MAX_DISTURBED or not candidates or duration < 0.5:
                kind = "file"  # no fault possible now: a file rewrite instead
        if kind != "file":
            server = rng.choice(candidates)
            e = {"t": round(t, 3), "kind": kind, "server": server,
                 "duration": round(duration, 3)}
            if kind == "kill":
                e["signal"] = rng.choice(["SIGKILL", "SIGKILL", "SIGTERM"])
            elif kind == "health":
                e["via"] = rng.choice(["signal", "greeter_control"])
            elif kind == "errors":
                e["rate"] = rng.choice([0.2, 0.5, 1.0])
                e["code"] = rng.choice(["UNAVAILABLE", "UNAVAILABLE", "INTERNAL"])
            busy_until[server] = t + duration + 0.3
            events.append(e)
            continue
        # A file rewrite, among those possible now.
        removable = [n for n in good if len(good) - 1 >= MIN_GOOD and
                     sum(1 for m in listed if zone_of(m) == zone_of(n)) > 1]
        addable = [n for n in names if n not in listed and n not in disturbed]
        ops = {"remove": 3 if removable or dead_listed else 0, "add": 3 if addable else 0,
               "reweight": 3, "dead": 0 if dead_listed else 1, "garbage": 2}
        op = rng.choices(list(ops), weights=list(ops.values()))[0]
        e = {"t": round(t, 3), "kind": "file", "op": op}
        if op == "remove":
            if dead_listed and (not removable or rng.random() < 0.5):
                e["server"] = "dead"
                dead_listed = False
            else:
                e["server"] = rng.choice(removable)
                listed.discard(e["server"])
        elif op == "add":
            e["server"] = rng.choice(addable)
            listed.add(e["server"])
        elif op == "reweight":
            e["server"] = rng.choice(sorted(listed))
            e["weight"] = rng.randint(1, 5)
        elif op == "dead":
            dead_listed = True
        else:
            e["garbage"] = rng.randrange(len(GARBAGE))
        events.append(e)
    # Restore everything at the end of the chaos.
    events.append({"t": round(chaos_end, 3), "kind": "file", "op": "restore"})
    return events


# --------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------

class Run:
    def __init__(self, args, bins, workdir):
        self.args, self.bins, self.workdir = args, bins, workdir
        self.logdir = os.path.join(workdir, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.path = os.path.join(workdir, "endpoints.json")
        rng = random.Random(args.seed ^ 0x5eed)
        taken = set()
        self.servers = {}
        for names in ZONES.values():
            for name in names:
                port = pick_port(rng, taken)
                taken.add(port)
                self.servers[name] = Server(bins, name, port, self.logdir)
        self.dead_port = pick_port(rng, taken)
        self.listed = set(self.servers)
        self.weights = {}
        self.dead_listed = False
        self.file_history = []   # (t, endpoint count) of every good file written
        self.events = []         # what happened, with real times
        self.errors = []         # driver-side problems (fail the run)
        self.client = None
        self.t0_unix = None

    def now(self):
        return time.time() - self.t0_unix

    def write_file(self, t=None):
        text = endpoints_json(self.servers, self.listed, self.weights,
                              self.dead_port if self.dead_listed else None)
        write_atomically(self.path, text)
        count = len(self.listed) + (1 if self.dead_listed else 0)
        if t is None:
            t = self.now() if self.t0_unix is not None else 0.0
        self.file_history.append((t, count))
        return text

    def start(self):
        for s in self.servers.values():
            s.start()
        self.good_text = self.write_file(0.0)
        with open(os.path.join(self.workdir, "service_config.json"), "w") as f:
            json.dump(service_config(self.args.deadline_ms), f)
        env = dict(os.environ)
        if self.args.asan:
            # A bounded quarantine: freed memory otherwise stays resident up
            # to 256 MiB.
            env["ASAN_OPTIONS"] = ":".join(
                o for o in (env.get("ASAN_OPTIONS", ""), "quarantine_size_mb=16") if o)
        self.client_out = open(os.path.join(self.workdir, "client.jsonl"), "w")
        self.client_err = open(os.path.join(self.logdir, "client.stderr.log"), "w")
        self.client = subprocess.Popen(
            [self.bins["client"], f"--target=lbkit-file://{self.path}",
             f"--service_config=@{os.path.join(self.workdir, 'service_config.json')}",
             f"--rate={self.args.rate}", f"--duration_s={self.args.duration}",
             f"--deadline_ms={self.args.deadline_ms}",
             f"--state_out={os.path.join(self.workdir, 'final_state.json')}"],
            stdout=subprocess.PIPE, stderr=self.client_err, text=True, env=env)
        line = self.client.stdout.readline()
        if not line:
            raise RuntimeError(f"the client exited ({self.client.wait()}) before starting; "
                               f"see {self.client_err.name}")
        self.client_out.write(line)
        start = json.loads(line)
        self.t0_unix = start["start_unix_ms"] / 1000.0
        self.lines = [start]
        # Read the client's lines as they come, so its pipe never fills.
        self.reader = threading.Thread(target=self.read_client, daemon=True)
        self.reader.start()

    def read_client(self):
        for line in self.client.stdout:
            self.client_out.write(line)
            self.client_out.flush()
            try:
                self.lines.append(json.loads(line))
            except json.JSONDecodeError:
                self.errors.append(f"client printed a line that is not JSON: {line[:200]!r}")

    def sleep_until(self, t):
        while True:
            left = t - self.now()
            if left <= 0:
                return
            if self.client.poll() is not None:
                raise RuntimeError(f"the client exited early with {self.client.returncode}")
            time.sleep(min(left, 0.2))

    def execute(self, planned):
        # Each planned event becomes a start action and, for faults, an end
        # action; they run in time order.
        actions = []
        for i, e in enumerate(planned):
            actions.append((e["t"], 0, i, "start"))
            if e["kind"] != "file":
                actions.append((e["t"] + e["duration"], 1, i, "end"))
        actions.sort()
        records = [dict(e, start=None, end=None) for e in planned]
        for t, _, i, what in actions:
            self.sleep_until(t)
            e, rec = planned[i], records[i]
            try:
                if what == "start":
                    rec["start"] = round(self.now(), 3)
                    self.begin(e, rec)
                    if e["kind"] == "file":
                        rec["end"] = rec["start"]
                else:
                    self.finish(e, rec)
                    rec["end"] = round(self.now(), 3)
            except Exception as ex:  # noqa: BLE001 - recorded, fails the run
                self.errors.append(f"event {e}: {what}: {ex}")
                rec["error"] = str(ex)
        self.events = records

    def begin(self, e, rec):
        kind = e["kind"]
        if kind == "file":
            op = e["op"]
            if op == "remove":
                if e["server"] == "dead":
                    self.dead_listed = False
                else:
                    self.listed.discard(e["server"])
                    self.weights.pop(e["server"], None)
            elif op == "add":
                self.listed.add(e["server"])
            elif op == "reweight":
                self.weights[e["server"]] = e["weight"]
            elif op == "dead":
                self.dead_listed = True
            elif op == "restore":
                self.listed = set(self.servers)
                self.weights = {}
                self.dead_listed = False
            if op == "garbage":
                name, make = GARBAGE[e["garbage"]]
                rec["garbage_kind"] = name
                write_atomically(self.path, make(self.good_text))
            else:
                self.good_text = self.write_file()
            return
        s = self.servers[e["server"]]
        if kind == "kill":
            s.kill(signal.Signals[e["signal"]].value)
        elif kind == "freeze":
            s.signal(signal.SIGSTOP)
            s.frozen = True
        elif kind == "health":
            if e["via"] == "signal":
                s.signal(signal.SIGUSR1)
            else:
                s.control("--serving=false")
        elif kind == "errors":
            s.control(f"--error_rate={e['rate']}", f"--error_code={e['code']}")

    def finish(self, e, rec):
        s = self.servers[e["server"]]
        kind = e["kind"]
        if kind == "kill":
            s.start()
        elif kind == "freeze":
            s.signal(signal.SIGCONT)
            s.frozen = False
        elif kind == "health":
            if e["via"] == "signal":
                s.signal(signal.SIGUSR2)
            else:
                s.control("--serving=true")
        elif kind == "errors":
            s.control("--error_rate=0")

    def wait_client(self):
        limit = self.args.duration + self.args.deadline_ms / 1000.0 + 60
        try:
            self.client.wait(timeout=max(1.0, limit - self.now()))
        except subprocess.TimeoutExpired:
            self.client.kill()
            self.client.wait()
            self.errors.append(f"the client did not finish within {limit:.0f} s; killed")
        self.reader.join(timeout=10)
        self.client_out.close()
        self.client_err.close()

    def stop(self):
        for s in self.servers.values():
            try:
                rc = s.stop_for_good()
            except Exception as ex:  # noqa: BLE001
                self.errors.append(f"{s.name}: stopping: {ex}")
                continue
            if rc not in (0, None):
                self.errors.append(f"{s.name} exited with {rc} on SIGTERM (a crash?)")
            for how, code in s.exits:
                # SIGKILL: -9 expected; SIGTERM: a clean 0 expected.
                expected = {"SIGKILL": -9, "SIGTERM": 0}.get(how)
                if code != expected:
                    self.errors.append(f"{s.name}: stopped with {how}, exit status {code}")
        if self.client is not None and self.client.poll() is None:
            self.client.kill()
            self.client.wait()


# --------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------

def window_of(e, deadline_s):
    """The predicted failure window of an executed event, or None."""
    if e.get("start") is None:
        return None
    start = e["start"]
    end = e["end"] if e.get("end") is not None else start
    if e["kind"] == "freeze":
        return (start, end + deadline_s + 1.0, "freeze")
    if e["kind"] == "errors":
        return (start, end + 1.0, "errors")
    if e["kind"] == "kill":
        if e["signal"] == "SIGKILL":
            return (start, start + deadline_s + 1.0, "kill9")
        return (start, start + DRAIN_MS / 1000.0 + SERVER_SHUTDOWN_S + deadline_s + 1.0,
                "kill15")
    return None


def merge_hist(seconds):
    h = {}
    for s in seconds:
        for k, v in s["hist"].items():
            h[int(k)] = h.get(int(k), 0) + v
    return h


def hist_percentile(h, p):
    n = sum(h.values())
    if n == 0:
        return None
    rank = max(1, int(p * n + 0.999999))
    seen = 0
    for k in sorted(h):
        seen += h[k]
        if seen >= rank:
            return round(0.05 * 1.1 ** (k + 1), 3)  # bucket upper bound, ms
    return None


def median_of(seconds, key):
    values = [s[key] for s in seconds if s.get(key, -1) >= 0]
    return statistics.median(values) if values else None


def analyse(run, args):
    checks = []

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    lines = run.lines
    seconds = [l for l in lines if l.get("type") == "second"]
    summaries = [l for l in lines if l.get("type") == "summary"]
    summary = summaries[-1] if summaries else None
    D = args.deadline_ms / 1000.0

    # -- the client ran and accounted for everything
    check("client exit status 0", run.client.returncode == 0,
          f"exit status {run.client.returncode}")
    if summary is None:
        check("client summary", False, "no summary line")
        return checks, {}
    failed_total = sum(summary["failed"].values())
    sum_sent = sum(s["sent"] for s in seconds)
    sum_ok = sum(s["ok"] for s in seconds)
    sum_failed = sum(sum(s["failed"].values()) for s in seconds)
    check("every RPC accounted for",
          summary["outstanding"] == 0 and summary["sent"] == summary["ok"] + failed_total
          and sum_sent == summary["sent"] and sum_ok == summary["ok"]
          and sum_failed == failed_total,
          f"sent {summary['sent']} = ok {summary['ok']} + failed {failed_total} "
          f"(+ outstanding {summary['outstanding']}); per-second sums {sum_sent} = "
          f"{sum_ok} + {sum_failed}")
    check("no RPC shed by the client", summary["shed"] == 0,
          f"{summary['shed']} RPCs not started (in-flight bound reached)")
    expected_sent = int(args.rate * args.duration)
    check("the client kept the rate", summary["sent"] >= 0.97 * expected_sent,
          f"{summary['sent']} sent of {expected_sent} due")

    # -- sanitizers and crashes
    reports = []
    for fname in sorted(os.listdir(run.logdir)):
        with open(os.path.join(run.logdir, fname), errors="replace") as f:
            text = f.read()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                reports.append(f"{fname}: {marker}")
    check("no sanitizer report", not reports, "; ".join(reports) or "none")
    check("no driver or process errors", not run.errors, "; ".join(run.errors) or "none")

    # -- failures only inside predicted windows
    windows = [w for w in (window_of(e, D) for e in run.events) if w]
    outside = []
    by_kind = {}
    for s in seconds:
        n = sum(s["failed"].values())
        if n == 0:
            continue
        lo, hi = s["t"], s["t"] + 1
        inside = [w for w in windows if lo < w[1] and hi > w[0]]
        if inside:
            kinds = sorted({w[2] for w in inside})
            key = "+".join(kinds)
            by_kind[key] = by_kind.get(key, 0) + n
        else:
            outside.append({"t": s["t"], "failed": s["failed"]})
    check("failures only in predicted windows", not outside,
          "none outside" if not outside else
          "outside every window: " + ", ".join(f"second {o['t']}: {o['failed']}"
                                              for o in outside))
    # Every event's own failure count (a second overlapping two windows counts
    # in both).
    for e in run.events:
        w = window_of(e, D)
        if w:
            e["window"] = [round(w[0], 3), round(w[1], 3)]
            e["failed_in_window"] = sum(sum(s["failed"].values()) for s in seconds
                                        if s["t"] < w[1] and s["t"] + 1 > w[0])

    # -- leak check
    n = args.duration
    fifth = max(1, n // 5)
    second_fifth = [s for s in seconds if fifth <= s["t"] < 2 * fifth]
    last_fifth = [s for s in seconds if n - fifth <= s["t"] < n]
    leak = {}
    for key in ("heap_kb", "rss_kb", "fds", "threads"):
        a, b = median_of(second_fifth, key), median_of(last_fifth, key)
        leak[key] = {"second_fifth_median": a, "last_fifth_median": b,
                     "last_fifth_max": max((s.get(key, -1) for s in last_fifth), default=None),
                     "second_fifth_max": max((s.get(key, -1) for s in second_fifth),
                                             default=None)}
    # The tail after the last new high of calls in flight.
    sending = [s for s in seconds if s["t"] < n]
    high, last_high = -1, None
    for s in sending:
        if s["t"] >= fifth and s["in_flight"] > high:
            high, last_high = s["in_flight"], s["t"]
    tail_start = max(fifth, (last_high or 0) + 5)
    tail_start = min(tail_start, n - LEAK_TAIL_MIN_S)
    tail = [s for s in sending if s["t"] >= tail_start]
    leak["tail"] = {"from_s": tail_start, "to_s": n, "last_in_flight_high_s": last_high,
                    "in_flight_high": high}
    for key, frac, floor in (("heap_kb", LEAK_HEAP_FRACTION, LEAK_HEAP_MIN_KB),
                             ("rss_kb", LEAK_RSS_FRACTION, LEAK_RSS_MIN_KB),
                             ("threads", 0.0, LEAK_THREADS)):
        a = median_of(tail[:3], key)
        b = median_of(tail[-3:], key)
        tol = max(floor, frac * (a or 0))
        leak[key].update({"tail_start": a, "tail_end": b, "tolerance": tol})
        detail = (f"{a} -> {b} over seconds {tail_start}..{n - 1} (calls in flight last "
                  f"peaked at {high} in second {last_high}), tolerance +{tol:g}")
        if key == "rss_kb" and args.asan:
            # ASan keeps freed memory in its quarantine (256 MB by default)
            # before reusing it, so RSS climbs with every allocation made,
            # leak or not. Its live-heap count and LeakSanitizer at exit
            # are the leak checks there; RSS is reported only.
            print(f"soak: info rss under ASan (quarantine; not checked): {detail}")
            continue
        check(f"{key.split('_')[0]} flat after the last high of calls in flight",
              a is not None and b is not None and b - a <= tol, detail)
    a, b = leak["fds"]["second_fifth_max"], leak["fds"]["last_fifth_max"]
    leak["fds"]["tolerance"] = LEAK_FDS
    check("fds flat after warm-up", a is not None and b is not None and b - a <= LEAK_FDS,
          f"max {a} (2nd fifth) -> {b} (last fifth), tolerance +{LEAK_FDS}")
    warm_fds = [s["fds"] for s in seconds if s["t"] < args.chaos_start]
    final_fds = seconds[-1]["fds"] if seconds else None
    check("fds at the end equal the warm-up's",
          warm_fds and final_fds is not None and final_fds <= max(warm_fds),
          f"warm-up {min(warm_fds) if warm_fds else None}..{max(warm_fds) if warm_fds else None}"
          f", end {final_fds}")
    policies = sorted({s["policies"] for s in seconds})
    check("lbkit policy instances constant", len(policies) == 1,
          f"policy instances seen: {policies}")

    # -- endpoints follow the file; subchannels follow the endpoints
    history = run.file_history
    mismatches = []
    for s in seconds:
        t = s["t"]
        changes = [h for h in history if h[0] <= t + 1]
        if not changes or any(t - ENDPOINT_LAG_S < h[0] <= t + 1 for h in history):
            continue  # a rewrite within the last ENDPOINT_LAG_S seconds
        expected = changes[-1][1]
        if s["endpoints"] != expected:
            mismatches.append(f"second {t}: {s['endpoints']} endpoints, file has {expected}")
    check("leaf policies' endpoints follow the file", not mismatches,
          "; ".join(mismatches[:10]) or "always (after a 2 s lag)")
    last = seconds[-1] if seconds else {}
    check("one subchannel per endpoint at the end",
          last.get("subchannels") == last.get("endpoints") == len(run.servers),
          f"end: {last.get('subchannels')} subchannels, {last.get('endpoints')} endpoints, "
          f"{len(run.servers)} in the file")
    extra = [s["subchannels"] - s["endpoints"] for s in seconds]
    settle = [s for s in seconds if s["t"] >= args.chaos_end + ENDPOINT_LAG_S + D]
    bad_settle = [s["t"] for s in settle if sum(s["failed"].values())]
    check("no failure in the settle period", not bad_settle,
          f"failures in seconds {bad_settle}" if bad_settle else "none")

    # -- figures
    def phase_stats(name, secs):
        h = merge_hist(secs)
        failed = {}
        for s in secs:
            for k, v in s["failed"].items():
                failed[k] = failed.get(k, 0) + v
        return {"phase": name, "seconds": len(secs),
                "sent": sum(s["sent"] for s in secs), "ok": sum(s["ok"] for s in secs),
                "failed": failed, "p50_ms": hist_percentile(h, 0.5),
                "p99_ms": hist_percentile(h, 0.99), "p999_ms": hist_percentile(h, 0.999)}

    quiet = [s for s in seconds if not any(s["t"] < w[1] and s["t"] + 1 > w[0]
                                           for w in windows)]
    phases = [
        phase_stats("warm-up", [s for s in seconds if s["t"] < args.chaos_start]),
        phase_stats("chaos", [s for s in seconds
                              if args.chaos_start <= s["t"] < args.chaos_end]),
        phase_stats("settle", [s for s in seconds
                               if args.chaos_end <= s["t"] < args.duration]),
        phase_stats("drain", [s for s in seconds if s["t"] >= args.duration]),
        phase_stats("outside every failure window", quiet),
        phase_stats("whole run", seconds),
    ]
    zone_b = sum(v for s in seconds for k, v in s["backends"].items() if zone_of(k) == "b")
    figures = {
        "sent": summary["sent"], "ok": summary["ok"], "failed_total": failed_total,
        "failed_by_code": summary["failed"], "shed": summary["shed"],
        "outstanding": summary["outstanding"],
        "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
        "p999_ms": summary["p999_ms"], "max_ms": summary["max_ms"],
        "peak_rss_kb": summary["peak_rss_kb"],
        "heap_kb_start": seconds[0].get("heap_kb") if seconds else None,
        "heap_kb_end": seconds[-1].get("heap_kb") if seconds else None,
        "rss_kb_start": seconds[0]["rss_kb"] if seconds else None,
        "rss_kb_end": seconds[-1]["rss_kb"] if seconds else None,
        "fds_start": seconds[0]["fds"] if seconds else None,
        "fds_end": seconds[-1]["fds"] if seconds else None,
        "fds_max": max((s["fds"] for s in seconds), default=None),
        "threads_end": seconds[-1]["threads"] if seconds else None,
        "subchannels_minus_endpoints_max": max(extra, default=None),
        "zone_b_share_percent": round(100.0 * zone_b / max(1, summary["ok"]), 2),
        "failures_by_window_kind": by_kind,
        "errors": summary.get("errors", []),
        "phases": phases,
        "leak": leak,
        "client_cpu_s": summary.get("cpu_s"),
        "client_cpu_us_per_rpc": round(1e6 * summary.get("cpu_s", 0) / max(1, summary["sent"]), 1),
    }
    return checks, figures


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------

KIND_COLORS = {"kill": "#d62728", "freeze": "#1f77b4", "health": "#2ca02c",
               "errors": "#ff7f0e"}


def chart(report, seconds, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    t = [s["t"] for s in seconds]
    fig, axes = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    ax = axes[0]
    ax.plot(t, [s["sent"] for s in seconds], color="#999999", label="sent/s")
    ax.plot(t, [s["ok"] for s in seconds], color="#4c72b0", label="ok/s")
    ax.set_ylabel("RPCs per second")
    ax.legend(loc="lower left", fontsize=8)
    ax = axes[1]
    codes = sorted({c for s in seconds for c in s["failed"]})
    bottom = [0] * len(t)
    for i, code in enumerate(codes):
        values = [s["failed"].get(code, 0) for s in seconds]
        ax.bar(t, values, bottom=bottom, width=0.9, label=code, align="edge",
               color=plt.cm.tab10(i % 10))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("failed per second")
    if codes:
        ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    ax.plot(t, [s["p99_ms"] for s in seconds], color="#8172b2", label="p99")
    ax.plot(t, [s["p50_ms"] for s in seconds], color="#64b5cd", label="p50")
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[3]
    ax.plot(t, [s["rss_kb"] / 1024.0 for s in seconds], color="#c44e52", label="RSS")
    ax.plot(t, [s.get("heap_kb", 0) / 1024.0 for s in seconds], color="#dd8452",
            label="live heap")
    ax.set_ylabel("client memory (MiB)")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(t, [s["fds"] for s in seconds], color="#55a868", label="open fds")
    ax2.plot(t, [s["endpoints"] for s in seconds], color="#937860", ls="--",
             label="endpoints (leaf policies)")
    ax2.plot(t, [s["subchannels"] for s in seconds], color="#000000", ls=":",
             label="subchannels")
    ax2.set_ylabel("count")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("seconds since the client started")
    for e in report["events"]:
        if e.get("start") is None:
            continue
        for a in axes:
            if e["kind"] == "file":
                a.axvline(e["start"], color="#bbbbbb" if e["op"] != "garbage" else "#7f00ff",
                          lw=0.6, alpha=0.7)
            else:
                a.axvspan(e["start"], e["end"] or e["start"], color=KIND_COLORS[e["kind"]],
                          alpha=0.12, lw=0)
    handles = [Patch(color=c, alpha=0.3, label=k) for k, c in KIND_COLORS.items()]
    handles += [Patch(color="#bbbbbb", label="file rewrite"),
                Patch(color="#7f00ff", label="garbage file")]
    axes[0].legend(handles=axes[0].get_legend_handles_labels()[0] + handles,
                   loc="lower left", fontsize=7, ncol=4)
    f = report["figures"]
    fig.suptitle(
        f"lbkit chaos soak: {report['config']['duration_s']} s at "
        f"{report['config']['rate']:g} RPC/s, seed {report['config']['seed']} - "
        f"{f['sent']} sent, {f['failed_total']} failed, p99 {f['p99_ms']} ms, "
        f"{'PASSED' if report['passed'] else 'FAILED'} ({report['machine']['date']})",
        fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def machine_info():
    sys.path.insert(0, os.path.join(TOP, "benchmarks", "loopback"))
    import run_loopback  # pylint: disable=import-outside-toplevel
    return run_loopback.machine_info(os.getloadavg()[0], sidecars=False)


def is_asan_build(build_dir):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("LBKIT_SANITIZE:"):
                    return line.strip().split("=", 1)[1] == "address"
    except FileNotFoundError:
        pass
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", default=os.path.join(TOP, "build"))
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (>= 30)")
    parser.add_argument("--rate", type=float, default=1000, help="RPCs per second")
    parser.add_argument("--seed", type=int, default=1, help="the chaos schedule's seed")
    parser.add_argument("--deadline-ms", type=int, default=1000, help="each RPC's deadline")
    parser.add_argument("--out", default=os.path.join(TOP, "benchmarks", "results", "soak"),
                        help="where report.json and soak.png go")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the working directory (logs, client output) even on success")
    args = parser.parse_args()
    if args.duration < 30 or args.duration > 24 * 3600:
        parser.error("--duration must be in [30, 86400]")
    if not 0 < args.rate <= 20000:
        parser.error("--rate must be in (0, 20000]")
    build = os.path.abspath(args.build_dir)
    bins = {"server": os.path.join(build, "examples", "greeter", "greeter_server"),
            "control": os.path.join(build, "examples", "greeter", "greeter_control"),
            "client": os.path.join(build, "tests", "soak", "lbkit_soak_client")}
    for b in bins.values():
        if not os.access(b, os.X_OK):
            parser.error(f"{b} is missing: build lbkit_soak_client, greeter_server and "
                         f"greeter_control in {build}")
    args.asan = is_asan_build(build)
    # Warm-up, chaos, settle: the first fifth is warm-up for the leak check
    # anyway; the chaos starts a tenth in and ends a tenth before the end.
    args.chaos_start = min(20.0, max(5.0, args.duration * 0.1))
    settle = min(30.0, max(8.0, args.duration * 0.1))
    args.chaos_end = args.duration - settle

    planned = plan(args.seed, args.chaos_start, args.chaos_end)
    machine = machine_info()
    workdir = tempfile.mkdtemp(prefix="lbkit-soak-")
    log(f"{args.duration} s at {args.rate:g} RPC/s, seed {args.seed}, {len(planned)} events, "
        f"build {build}{' (ASan)' if args.asan else ''}; working in {workdir}")
    run = Run(args, bins, workdir)
    started = time.monotonic()
    try:
        run.start()
        run.execute(planned)
        run.wait_client()
    except Exception as ex:  # noqa: BLE001 - reported as a failed check
        run.errors.append(f"driver: {type(ex).__name__}: {ex}")
        if run.client is not None and run.client.poll() is None:
            run.client.kill()
            run.client.wait()
        if not run.events:
            run.events = [dict(e, start=None, end=None) for e in planned]
    finally:
        run.stop()
    if run.client is None or not hasattr(run, "lines"):
        log(f"FAILED before the client ran: {run.errors}; logs in {workdir}")
        return 1

    checks, figures = analyse(run, args)
    passed = all(c["ok"] for c in checks)
    seconds = [l for l in run.lines if l.get("type") == "second"]
    report = {
        "passed": passed,
        "config": {"duration_s": args.duration, "rate": args.rate, "seed": args.seed,
                   "deadline_ms": args.deadline_ms, "asan": args.asan,
                   "chaos_start_s": args.chaos_start, "chaos_end_s": args.chaos_end,
                   "servers": {n: {"zone": f"r1/{s.zone}", "port": s.port,
                                   "starts": s.starts} for n, s in run.servers.items()},
                   "client_locality": CLIENT_LOCALITY,
                   "service_config": service_config(args.deadline_ms),
                   "grace": GRACE_S,
                   "leak_tolerance": {"tail_min_s": LEAK_TAIL_MIN_S,
                                      "heap_fraction": LEAK_HEAP_FRACTION,
                                      "heap_min_kb": LEAK_HEAP_MIN_KB,
                                      "rss_fraction": LEAK_RSS_FRACTION,
                                      "rss_min_kb": LEAK_RSS_MIN_KB, "fds": LEAK_FDS,
                                      "threads": LEAK_THREADS}},
        "machine": machine,
        "wall_s": round(time.monotonic() - started, 1),
        "checks": checks,
        "figures": figures,
        "events": run.events,
        "file_history": [{"t": round(t, 3), "endpoints": n} for t, n in run.file_history],
        "seconds": [{k: s[k] for k in ("t", "phase", "sent", "ok", "failed", "p50_ms",
                                       "p99_ms", "max_ms", "in_flight", "heap_kb", "rss_kb", "fds",
                                       "threads", "endpoints", "ready", "ejected",
                                       "subchannels", "policies", "backends")}
                    for s in seconds],
    }
    os.makedirs(args.out, exist_ok=True)
    json_out = os.path.join(args.out, "report.json")
    with open(json_out, "w") as f:
        json.dump(report, f, indent=1)
    png_out = os.path.join(args.out, "soak.png")
    try:
        chart(report, seconds, png_out)
    except Exception as ex:  # noqa: BLE001 - a missing matplotlib must not hide results
        log(f"no chart: {type(ex).__name__}: {ex}")
        passed = False

    f = figures
    if f:
        log(f"sent {f['sent']}, ok {f['ok']}, failed {f['failed_total']} "
            f"{f['failed_by_code']}; p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms; "
            f"heap {f['heap_kb_start']} -> {f['heap_kb_end']} KiB; "
            f"RSS {f['rss_kb_start']} -> {f['rss_kb_end']} KiB (peak {f['peak_rss_kb']}); "
            f"fds {f['fds_start']} -> {f['fds_end']} (max {f['fds_max']}); "
            f"failures by window: {f['failures_by_window_kind']}")
        for p in f["phases"]:
            log(f"  {p['phase']:30s} {p['seconds']:4d} s  sent {p['sent']:8d}  "
                f"ok {p['ok']:8d}  failed {p['failed']}  p99 {p['p99_ms']} ms")
    for c in checks:
        log(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
    log(f"wrote {json_out} and {png_out}")
    if passed and not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"logs and the client's output kept in {workdir}")
    log("PASSED" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
