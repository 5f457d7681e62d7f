#!/usr/bin/env python3
"""Which files under src/ reach gRPC's internal headers, and whether the
parts that must not do.

lbkit is pinned to one gRPC's internal ABI (docs/grpc-internals.md); the
less code that touches it, the smaller a port to another gRPC. A file
"reaches" the internals when it includes "src/core/..." or
"grpc_internal/...", or includes a project header that does (followed
transitively). The files listed in MUST_NOT_REACH (the algorithms, the
stats, the Istio translator, the value types and parsers resolvers share)
must not: the script exits 1 naming any that do.

  scripts/grpc-internals.py            counts, and the check
  scripts/grpc-internals.py --list     every file that reaches them, and how
  scripts/grpc-internals.py --rev REV  the same counts for a git revision
"""
import argparse
import os
import re
import subprocess
import sys

INTERNAL = re.compile(r'#include "(src/core/|grpc_internal/)')
PROJECT = re.compile(r'#include "([^"]+)"')
MUST_NOT_REACH = [
    r"^src/algorithms/",
    r"^src/stats/",
    r"^src/istio/",
    r"^src/common/endpoint_attributes\.",
    r"^src/resolvers/common/endpoint_spec\.",
    r"^src/resolvers/etcd/registration\.cc$",
    r"^src/resolvers/k8s/(k8s_target|kube_objects|kube_config|watch_stream|istio_rules)\.",
]


def read_tree(top, rev):
    files = {}
    if rev is None:
        for root, _, names in os.walk(os.path.join(top, "src")):
            for n in names:
                if n.endswith((".h", ".cc")):
                    path = os.path.relpath(os.path.join(root, n), top)
                    with open(os.path.join(top, path), encoding="utf-8") as f:
                        files[path] = f.read()
        return files
    names = subprocess.run(["git", "-C", top, "ls-tree", "-r", "--name-only", rev, "src"],
                           check=True, capture_output=True, text=True).stdout.split()
    for path in names:
        if path.endswith((".h", ".cc")):
            files[path] = subprocess.run(["git", "-C", top, "show", f"{rev}:{path}"],
                                         check=True, capture_output=True, text=True).stdout
    return files


def reach(files):
    """path -> the chain of includes that reaches an internal header (or None)."""
    memo = {}

    def visit(path, stack):
        if path in memo:
            return memo[path]
        if path in stack:
            return None
        text = files[path]
        if INTERNAL.search(text):
            memo[path] = [path]
            return memo[path]
        for inc in PROJECT.findall(text):
            dep = "src/" + inc
            if dep in files:
                chain = visit(dep, stack | {path})
                if chain is not None:
                    memo[path] = [path] + chain
                    return memo[path]
        memo[path] = None
        return None

    return {p: visit(p, frozenset()) for p in sorted(files)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--rev")
    args = parser.parse_args()
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    files = read_tree(top, args.rev)
    chains = reach(files)
    direct = sum(1 for t in files.values() if INTERNAL.search(t))
    reaching = [p for p, c in chains.items() if c is not None]
    print(f"{len(files)} files under src/; {direct} include a gRPC internal header, "
          f"{len(reaching)} reach one (directly or through lbkit headers)")
    if args.list:
        for p in reaching:
            print("  " + " -> ".join(chains[p]))
    bad = [p for p in reaching if any(re.search(r, p) for r in MUST_NOT_REACH)]
    for p in bad:
        print(f"error: {p} must not reach gRPC internals: " + " -> ".join(chains[p]))
    return 1 if bad and args.rev is None else 0


if __name__ == "__main__":
    sys.exit(main())
