#!/usr/bin/env bash
# Installs everything lbkit needs on a Debian 12 (bookworm) or Debian 13
# (trixie) machine, idempotently:
#  - the apt packages for the build, tests, examples and benchmarks;
#  - gRPC's internal headers (the LB plug-in API is not in libgrpc-dev),
#    taken from Debian's source package of exactly the installed libgrpc
#    (libgrpc29, libgrpc29t64 on Debian 13), because the internal ABI is not
#    covered by the soname.
# Nothing is downloaded except through apt.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dest="$top/third_party/grpc-internal"
stamp="$dest/.version"

die() { echo "bootstrap: $*" >&2; exit 1; }

# The release decides package names and the deb-src suite; anything else is
# refused by name rather than failing half-way through an install.
os_name=unknown
codename=
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  os_name=${PRETTY_NAME:-${NAME:-unknown}}
  [ "${ID:-}" = debian ] && codename=${VERSION_CODENAME:-}
fi
case "$codename" in
  bookworm) grpc_lib=libgrpc29; clang_rt=libclang-rt-14-dev; nginx=nginx-light ;;
  trixie) grpc_lib=libgrpc29t64; clang_rt=libclang-rt-dev; nginx=nginx ;;
  *) die "unsupported system ($os_name): lbkit supports Debian 12 (bookworm) and Debian 13 (trixie), whose gRPC 1.51.1 it is built against" ;;
esac

PACKAGES=(
  build-essential cmake pkg-config dpkg-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev
  # lbkit_routes' regular expressions
  libre2-dev
  # the admin server (lbkit::AdminServer)
  libcivetweb-dev
  # lbkit-istio (Istio YAML to service config) and lbkit-k8s's kubeconfig
  libyaml-cpp-dev
  # lbkit-k8s: HTTPS to the API server, its JSON; its tests check the fake
  # API server with Kubernetes' official Python client
  libcurl4-openssl-dev nlohmann-json3-dev python3-kubernetes
  # benchmarks: the sidecar model and the charts
  "$nginx" haproxy python3-matplotlib
  # the fuzzers (tests/fuzz): clang with its libFuzzer and sanitizer runtimes
  clang "$clang_rt"
  # lbkit-etcd's tests run a real etcd
  etcd-server etcd-client
  # tools the tests and scripts use
  procps psmisc python3 curl openssl
)
# The include check (scripts/check-includes.py) runs on Debian 12, whose
# iwyu matches its clang 14 (docs/platforms.md).
[ "$codename" = bookworm ] && PACKAGES+=(iwyu)

need_install=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_install+=("$p")
done

if [ "$(id -u)" != 0 ] && [ ${#need_install[@]} -gt 0 ]; then
  die "missing packages (${need_install[*]}) and not root: run as root"
fi

apt_updated=0
apt_update() {
  [ $apt_updated = 1 ] && return
  echo "bootstrap: apt-get update"
  apt-get update -qq || die "apt-get update failed"
  apt_updated=1
}

if [ ${#need_install[@]} -gt 0 ]; then
  apt_update
  echo "bootstrap: installing ${need_install[*]}"
  # nginx and haproxy are for the benchmarks' own instances: a policy-rc.d
  # keeps their packages from starting system services (and failing the
  # install where port 80 is taken).
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_install[@]}" \
    >/dev/null || rc=$?
  [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install failed for: ${need_install[*]}"
  # nginx and haproxy start system services on install; the benchmark harness
  # runs its own instances on loopback, so stop the system ones.
  for svc in nginx haproxy; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    elif [ -f "/run/$svc.pid" ]; then
      kill "$(cat /run/$svc.pid)" 2>/dev/null || true
    fi
  done
fi

# The upstream version of the installed library, e.g. "1.51.1" from
# "1.51.1-3+b1": a binNMU ("+b1") rebuilds the same source.
lib_full=$(dpkg-query -W -f='${Version}' "$grpc_lib" 2>/dev/null) || die "$grpc_lib is not installed"
lib_upstream=${lib_full%%-*}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lib_upstream" ]; then
  echo "bootstrap: gRPC $lib_upstream internal headers already in $dest"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "gRPC internal headers missing and not root: run as root"

# A deb-src entry for the release's main, from the same mirror as the machine's
# deb entry (a local mirror stays local), unless apt already finds sources.
apt_update
if [ -z "$(apt-cache showsrc grpc 2>/dev/null | head -n1)" ]; then
  # (A minimal root has only /etc/apt/sources.list: no match is no error.)
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | awk '/^URIs:/ && !/security/ {print $2; exit}') || true
  [ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list 2>/dev/null \
             | awk '/^deb [a-z]+:\/\// && !/security/ {print $2; exit}') || true
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  echo "bootstrap: enabling deb-src for $codename main from $mirror"
  cat > /etc/apt/sources.list.d/lbkit-deb-src.sources <<SRC
Types: deb-src
URIs: $mirror
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_updated=0
  apt_update
fi

# The source version apt offers must be the one the binary was built from.
src_full=$(apt-cache showsrc grpc 2>/dev/null | awk '/^Version:/{print $2}' | sort -V | tail -n1)
[ -n "$src_full" ] || die "apt-cache showsrc grpc found nothing: is the deb-src entry reachable?"
src_upstream=${src_full%%-*}
src_upstream=${src_upstream#*:}
[ "$src_upstream" = "$lib_upstream" ] || \
  die "installed $grpc_lib is $lib_full (upstream $lib_upstream) but the grpc source package is $src_full: the internal headers would not match the library's ABI"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt downloads as the unprivileged _apt user when it can write there.
id _apt >/dev/null 2>&1 && chown _apt "$work"
echo "bootstrap: downloading grpc source $src_full"
(cd "$work" && apt-get source --download-only -qq "grpc=$src_full" >/dev/null) || die "apt-get source grpc=$src_full failed"
tarball=$(ls "$work"/grpc_*.orig.tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || die "no grpc orig tarball in the downloaded source package"

rm -rf "$dest"
mkdir -p "$dest"
# Only the headers: src/core/lib and the client channel (the LB plug-in API),
# plus the few other core headers they include.
tar -xf "$tarball" -C "$dest" --strip-components=1 --wildcards --no-anchored \
  '*/src/core/lib/*.h' '*/src/core/ext/filters/client_channel/*.h' \
  || die "extracting headers from $tarball failed"
count=$(find "$dest" -name '*.h' | wc -l)
[ "$count" -gt 100 ] || die "only $count headers extracted from $tarball"
echo "$lib_upstream" > "$stamp"
echo "bootstrap: extracted $count gRPC $lib_upstream internal headers into $dest"
