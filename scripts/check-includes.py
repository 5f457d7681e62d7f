#!/usr/bin/env python3
"""Include what you use, for the headers whose transitive includes differ
between the releases lbkit supports.

Debian 12's Abseil (LTS 20220623) pulls absl/strings/str_cat.h and friends
into many of its headers; Debian 13's (LTS 20240722) does not, so a file that
used absl::StrCat without including it built on one and not the other. This
runs include-what-you-use (Debian's `iwyu`) over every translation unit of a
build and fails if a file of lbkit's own uses an Abseil or C++ standard
library symbol without including its header. gRPC's and protobuf's headers
are the same version on both releases and are not checked (docs/platforms.md).

  scripts/check-includes.py BUILD_DIR          report, exit 1 if anything is missing
  scripts/check-includes.py BUILD_DIR --fix    add the missing lines, then report

BUILD_DIR must have been configured with CMAKE_EXPORT_COMPILE_COMMANDS=ON and
built (the generated protobuf headers must exist).
"""

import json
import os
import re
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OWN_DIRS = ("include", "src", "tests", "benchmarks", "examples", "tools")

# The C++ standard library headers (C++17), and the C headers IWYU names
# for what lbkit writes with std:: names.
STD = set("""
algorithm any array atomic bitset cassert cctype cerrno cfloat charconv chrono cinttypes
climits clocale cmath codecvt complex condition_variable csetjmp csignal cstdarg cstddef
cstdint cstdio cstdlib cstring ctime cwchar cwctype deque exception execution filesystem
forward_list fstream functional future initializer_list iomanip ios iosfwd iostream
istream iterator limits list locale map memory memory_resource mutex new numeric optional
ostream queue random ratio regex scoped_allocator set shared_mutex sstream stack stdexcept
streambuf string string_view system_error thread tuple type_traits typeindex typeinfo
unordered_map unordered_set utility valarray variant vector
""".split())
C_TO_CXX = {"stddef.h": "cstddef", "stdint.h": "cstdint", "stdlib.h": "cstdlib",
            "string.h": "cstring", "stdio.h": "cstdio", "math.h": "cmath",
            "limits.h": "climits", "inttypes.h": "cinttypes", "errno.h": "cerrno",
            "time.h": "ctime", "assert.h": "cassert", "ctype.h": "cctype"}
# Internal headers IWYU sometimes names instead of the public one.
LIBSTDCXX_PRIVATE = {"bits/chrono.h": "chrono", "bits/utility.h": "utility",
                     "bits/std_abs.h": "cstdlib", "bits/shared_ptr.h": "memory",
                     "bits/unique_ptr.h": "memory", "bits/stl_algo.h": "algorithm",
                     "bits/std_function.h": "functional", "bits/this_thread_sleep.h": "thread",
                     "bits/std_mutex.h": "mutex", "bits/unique_lock.h": "mutex",
                     "bits/stdint-uintn.h": "cstdint", "bits/stdint-intn.h": "cstdint",
                     "bits/types/struct_timeval.h": None, "bits/exception.h": "exception"}

ADD_RE = re.compile(r"^(\S.*) should add these lines:$")
INCLUDE_RE = re.compile(r'^#include [<"]([^>"]+)[>"]')


def checked_header(name):
    """The header lbkit must include for IWYU's `name`, or None if not checked."""
    if name.startswith("absl/"):
        return '"%s"' % name
    name = LIBSTDCXX_PRIVATE.get(name, name)
    if name is None:
        return None
    name = C_TO_CXX.get(name, name)
    # Every container header provides <initializer_list> (the standard says
    # so), and IWYU asks for it wherever a brace list meets a container.
    if name in STD and name != "initializer_list":
        return "<%s>" % name
    return None


def own_file(path):
    rel = os.path.relpath(os.path.realpath(path), TOP)
    return not rel.startswith("..") and rel.split(os.sep)[0] in OWN_DIRS


def run_iwyu(build_dir):
    db = os.path.join(build_dir, "compile_commands.json")
    if not os.path.exists(db):
        sys.exit("check-includes: %s is missing: configure with "
                 "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON" % db)
    files = sorted({e["file"] for e in json.load(open(db)) if own_file(e["file"])})
    cmd = ["iwyu_tool", "-j", os.environ.get("LBKIT_JOBS", "2"), "-p", build_dir] + files + [
        "--", "-Xiwyu", "--no_fwd_decls", "-Xiwyu", "--no_comments"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    if "error:" in out.stdout and "should add" not in out.stdout:
        sys.exit("check-includes: include-what-you-use could not parse the sources:\n" +
                 out.stdout[-4000:])
    return out.stdout, len(files)


def missing_includes(text):
    """{file: [header spelled as lbkit writes it]} from IWYU's report."""
    missing = {}
    current = None
    for line in text.splitlines():
        m = ADD_RE.match(line)
        if m:
            current = m.group(1) if own_file(m.group(1)) else None
            continue
        if not line.strip() or line.startswith("The full include-list") or " should remove" in line:
            current = None
            continue
        if current is None:
            continue
        m = INCLUDE_RE.match(line)
        if not m:
            continue
        header = checked_header(m.group(1))
        # IWYU names libstdc++'s private headers (bits/chrono.h) even where
        # the public one is included.
        if header and header not in missing.get(current, []) and \
                not already_included(current, header):
            missing.setdefault(current, []).append(header)
    return missing


def already_included(path, header):
    """In the file, or (for a .cc) in its own header, which IWYU lets a .cc
    rely on."""
    for candidate in (path, os.path.splitext(path)[0] + ".h" if path.endswith(".cc") else None):
        try:
            if candidate and ("#include %s" % header) in open(candidate).read():
                return True
        except OSError:
            pass
    return False


def add_includes(path, headers):
    """Adds each header to the block of its kind, sorted: <...> with the
    angle-bracket includes, "absl/..." with the quoted ones (not above the
    file's own header, which a .cc includes first)."""
    lines = open(path).read().split("\n")
    present = {l.strip() for l in lines if l.startswith("#include")}
    for header in sorted(headers):
        directive = "#include %s" % header
        if directive in present:
            continue
        includes = [i for i, l in enumerate(lines) if l.startswith("#include")]
        own = includes[:1] if path.endswith(".cc") and includes and \
            lines[includes[0]].startswith('#include "') else []
        if header.startswith("<"):  # the standard block: <name>, no path, no .h
            same = [i for i in includes if re.match(r"#include <[a-z_]+>", lines[i])]
        else:
            same = [i for i in includes if lines[i].startswith('#include "') and i not in own]
        if not same:  # no block of this kind yet: a new one after the includes
            at = includes[-1] + 1 if includes else 0
            lines[at:at] = ["", directive] if includes else [directive]
        else:
            at = same[-1] + 1
            for i in same:
                if lines[i] > directive:
                    at = i
                    break
            lines.insert(at, directive)
        present.add(directive)
    open(path, "w").write("\n".join(lines))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build_dir, fix = sys.argv[1], "--fix" in sys.argv[2:]
    text, count = run_iwyu(build_dir)
    missing = missing_includes(text)
    if fix and missing:
        for path, headers in missing.items():
            add_includes(path, headers)
        text, count = run_iwyu(build_dir)
        missing = missing_includes(text)
    for path in sorted(missing):
        print("%s: include %s" % (os.path.relpath(path, TOP), ", ".join(sorted(missing[path]))))
    n = sum(len(v) for v in missing.values())
    print("check-includes: %d translation units, %d missing Abseil/standard includes in %d files"
          % (count, n, len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
