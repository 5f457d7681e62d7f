#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_CORPUS WORK_DIR [libFuzzer flags...]
# Runs one fuzzer over a fresh copy of its seed corpus: new inputs go to
# WORK_DIR (never into the repository), a crash lands in WORK_DIR/crash-*
# and fails the run. The dictionary is lbkit.dict beside this script.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus"
exec "$fuzzer" -dict="$(dirname "$0")/lbkit.dict" -max_len=8192 -timeout=10 \
  -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$work/" "$@" \
  "$work/corpus" "$seeds"
