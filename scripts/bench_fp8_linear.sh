#!/usr/bin/env bash
# FP8 linear layers (issue 13) in ONE device call: the FP8 GPU tests, then TTFT and peak memory of
# random:llama-3.1-8b with --linear bf16 and --linear fp8, dense and sparse (a density-0.05 index,
# triangular:128,3072), merged into one table.
#
#   here:   scripts/bench_fp8_linear.sh --prepare   copies build/tools/sacc and build/tests/sacc_gpu_tests with the
#                                                   libraries the GPU image lacks into .carry/fp8 (xz-packed)
#   device: run with carry [".carry/fp8"]:
#           scripts/bench_fp8_linear.sh [--ctx LIST]
#           The device receives the session's own checkout: from another worktree, copy .carry/fp8 and this
#           script into an ignored folder of that checkout and point SACC_FP8_CARRY (absolute) at it.
# Writes into $OUT (or bench/results/): tests.log, bf16.json, fp8_linear.md, fp8_linear.json, logs.
# Environment: SACC_FP8_MODEL (default llama-3.1-8b), SACC_FP8_REPEATS (default 2).
set -uo pipefail
CARRY=${SACC_FP8_CARRY:-$(cd "$(dirname "$0")/.." && pwd)/.carry/fp8}
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  set -e
  source scripts/carry_libs.sh
  rm -rf "$CARRY" && mkdir -p "$CARRY/pack"
  carry_binaries "$CARRY/pack/bin" build/tools/sacc build/tests/sacc_gpu_tests
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tools tests || echo '+local changes')" \
    >"$CARRY/pack/bin/COMMIT"
  tar -C "$CARRY/pack" -cJf "$CARRY/bin.tar.xz" bin
  rm -rf "$CARRY/pack"
  du -sh "$CARRY"
  exit 0
fi

CTX=32000,128000
while [ $# -gt 0 ]; do
  case $1 in
    --ctx) CTX=$2; shift 2 ;;
    *) echo "bench_fp8_linear: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:-bench/results}
BIN=$(mktemp -d)/bin
mkdir -p "$OUT"
tar -C "$(dirname "$BIN")" -xJf "$CARRY/bin.tar.xz" || exit 1
export LD_LIBRARY_PATH="$BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "commit $(cat $BIN/COMMIT)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
status=0

echo "== FP8 GPU tests"
timeout 60 "$BIN/sacc_gpu_tests" --gtest_filter='Fp8Linear.*' 2>&1 | tee "$OUT/tests.log" || status=1

# -r 2 after one warm-up: the shared device budget; the spread is small at these lengths (ttft_h200.md).
common=(-q bench -m "random:${SACC_FP8_MODEL:-llama-3.1-8b}" --ctx "$CTX" --attention dense,sparse --pattern triangular:128,3072
  -r "${SACC_FP8_REPEATS:-2}")
echo "== bench --linear bf16"
timeout 110 "$BIN/sacc" "${common[@]}" --linear bf16 --json "$OUT/bf16.json" --out "$OUT/bf16.md" 2>&1 |
  tee "$OUT/bench_bf16.log" || status=1
echo "== bench --linear fp8"
timeout 110 "$BIN/sacc" "${common[@]}" --linear fp8 --compare "$OUT/bf16.json" --out "$OUT/fp8_linear.md" \
  --json "$OUT/fp8_linear.json" 2>&1 | tee "$OUT/bench_fp8.log" || status=1
cat "$OUT/fp8_linear.md"
exit $status
