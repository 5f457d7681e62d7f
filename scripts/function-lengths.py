#!/usr/bin/env python3
"""Functions longer than a limit (60 lines by default) in C++ files: the
policies keep each step of the template methods (leaf_policy.h,
parent_policy.h) short enough to read at once.

  scripts/function-lengths.py [--max N] [PATH ...]   (default: src/policies)

Prints "LINES FILE:LINE SIGNATURE" for each one over the limit, longest
first, and exits 1 if there is any. A function is a brace block opened after
a parameter list (lambdas count towards the function around them), measured
from the first line of its signature to its closing brace.
"""
import argparse
import os
import re
import sys

CONTROL = re.compile(r"^(if|for|while|switch|else|do|namespace|class|struct|union|enum|case|"
                     r"try|catch|return|static_assert)\b")


def functions(path):
    with open(path, encoding="utf-8") as f:
        lines = [re.sub(r"//.*", "", line) for line in f.read().split("\n")]
    i = 0
    while i < len(lines):
        if lines[i].rstrip().endswith("{"):
            k = i
            while k > 0 and not re.search(r"[;{}]\s*$|^\s*$|^\s*(public|private|protected):\s*$|^\s*#",
                                          lines[k - 1]):
                k -= 1
            stmt = " ".join(x.strip() for x in lines[k:i + 1])
            if ("(" in stmt and not CONTROL.match(stmt) and not stmt.startswith("}")
                    and not re.search(r"=\s*\[|\]\s*\(|^\[", stmt)):
                depth, j = 0, i
                while j < len(lines):
                    depth += lines[j].count("{") - lines[j].count("}")
                    if depth <= 0:
                        break
                    j += 1
                yield j - k + 1, k + 1, stmt
                i = j
        i += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=60)
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = args.paths or [os.path.join(top, "src", "policies")]
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith((".h", ".cc"))]
        else:
            files.append(p)
    long = []
    for path in sorted(files):
        for n, line, stmt in functions(path):
            if n > args.max:
                long.append((n, os.path.relpath(path, top), line, stmt[:80]))
    for n, path, line, stmt in sorted(long, reverse=True):
        print(f"{n} {path}:{line} {stmt}")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
