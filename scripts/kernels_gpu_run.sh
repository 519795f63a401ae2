#!/usr/bin/env bash
# One device call for the flash kernels after a refactor: the flash / plan / runtime GPU tests against the CPU
# oracle with both kernel bodies (SACC_FLASH_BODY=sm90, then mma, read by the attention selector), then
# `attention_bench --density-sweep` (32K and 128K, d128 and d64), which verifies against the oracle first.
#   here:   scripts/kernels_gpu_run.sh prepare        packs build/tests/sacc_gpu_tests, build/bench/attention_bench,
#                                                     the libraries the GPU image lacks and the MInference config
#                                                     into .carry/kernels
#   device: run carry=[".carry/kernels"]  command: bash scripts/kernels_gpu_run.sh run
#           (the device gets the session's own checkout: from another worktree, copy .carry/kernels and this
#           script into an ignored folder of that checkout, carry it and set KERNELS_PACK to it)
# The device side writes $OUT/tests_<body>.log, $OUT/sweep.log and $OUT/density_sweep_h200.md.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACK=${KERNELS_PACK:-$ROOT/.carry/kernels}
FILTER='*Flash*:Plan*:MinferenceConfig*:*RuntimeCuda*:*EvalHooksCuda*'

prepare() {
  set -e
  local build=${SACC_BUILD_DIR:-$ROOT/build}
  rm -rf "$PACK" && mkdir -p "$PACK/data"
  # shellcheck source=carry_libs.sh
  source "$ROOT/scripts/carry_libs.sh"
  carry_binaries "$PACK" "$build/tests/sacc_gpu_tests" "$build/bench/attention_bench"
  strip --strip-debug "$PACK/sacc_gpu_tests" "$PACK/attention_bench"
  cp -r "$ROOT/../shared/data/minference" "$PACK/data/"
  git -C "$ROOT" rev-parse --short HEAD >"$PACK/COMMIT"
  du -sh "$PACK"
}

run() {
  local out=${OUT:-/tmp/kernels_gpu_run} commit status=0 rc
  commit=$(cat "$PACK/COMMIT")
  mkdir -p "$out"
  export LD_LIBRARY_PATH="$PACK${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # The tests read the shared data from the build's path (<source>/../shared/data).
  mkdir -p /work/wt-kernels /work/shared && cp -r "$PACK/data" /work/shared/
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  for body in sm90 mma; do
    local filter=$FILTER
    [ "$body" = mma ] && filter='*Flash*'
    SACC_FLASH_BODY=$body timeout "${TEST_TIMEOUT:-75}" "$PACK/sacc_gpu_tests" --gtest_filter="$filter" \
      --gtest_brief=1 >"$out/tests_$body.log" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || status=1
    echo "== tests, $body body: exit $rc"
    tail -n 6 "$out/tests_$body.log"
  done
  timeout "${SWEEP_TIMEOUT:-150}" "$PACK/attention_bench" --density-sweep --lengths 32768,131072 \
    --shapes llama-3.1-8b,d64 --commit "$commit" --out "$out/density_sweep_h200" >"$out/sweep.log" 2>&1 || status=1
  tail -n 20 "$out/sweep.log"
  return $status
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: kernels_gpu_run.sh prepare | run" >&2; exit 2 ;;
esac
