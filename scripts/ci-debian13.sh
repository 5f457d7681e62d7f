#!/usr/bin/env bash
# Runs the README's set-up and test command in a fresh Debian 13 (trixie)
# root, as a new user on that release would: debootstrap from the mirror the
# machine's apt already uses, a clone of this checkout's HEAD inside it, and
# `scripts/test.sh --no-sanitizers` there (bootstrap included). Needs root,
# debootstrap (installed if missing) and about 3 GB under /var/tmp. Prints
# the inner run's output and ends with its "lbkit: N passed, M failed" line;
# exits with its status. The root is removed afterwards, mounts first.
#
#   scripts/ci-debian13.sh              the optimised build and every test
#   scripts/ci-debian13.sh --keep DIR   use (and keep) DIR as the root
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "ci-debian13: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mount)"

keep=""
if [ "${1:-}" = --keep ]; then
  keep=${2:?--keep needs a directory}
fi
root=${keep:-$(mktemp -d /var/tmp/lbkit-trixie.XXXXXX)}
# mktemp makes it 0700: inside the chroot that is "/", and apt's
# unprivileged _apt user could then read nothing (not even resolv.conf).
chmod 755 "$root"

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" || true; done
  if [ -z "$keep" ]; then
    # Never delete through a mount that is still there (/dev above all).
    for m in "$root/dev/pts" "$root/dev" "$root/proc"; do
      if mountpoint -q "$m" 2>/dev/null; then
        echo "ci-debian13: $m is still mounted; leaving $root in place" >&2
        return
      fi
    done
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT

if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
           | awk '/^URIs:/ && !/security/ && /debian/ {print $2; exit}') || true
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list 2>/dev/null \
           | awk '/^deb [a-z]+:\/\// && !/security/ && /debian/ {print $2; exit}') || true
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

start=$(date +%s)
if [ ! -x "$root/bin/bash" ]; then
  echo "== ci-debian13: debootstrap trixie into $root from $mirror"
  debootstrap --variant=minbase trixie "$root" "$mirror" >/dev/null || die "debootstrap failed"
fi
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
mount --bind /dev/pts "$root/dev/pts" && mounted+=("$root/dev/pts")
cp /etc/resolv.conf "$root/etc/resolv.conf"
rm -rf "$root/root/lbkit"
git clone -q "$top" "$root/root/lbkit"
echo "== ci-debian13: root ready in $(( $(date +%s) - start )) s; running scripts/test.sh --no-sanitizers"
rc=0
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  /bin/bash -c 'cd /root/lbkit && scripts/test.sh --no-sanitizers' || rc=$?
echo "== ci-debian13: finished in $(( $(date +%s) - start )) s (exit $rc)"
exit "$rc"
