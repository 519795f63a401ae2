#!/usr/bin/env bash
# One device call for the flash attention kernels: GPU tests, compute-sanitizer memcheck on small shapes, then
# the kernel micro-benchmark (which verifies before it times). Run on the GPU machine from the repo root:
#   scripts/gpu_check.sh [build-dir] [out-dir]
# Binaries default to <build-dir>/tests/sacc_gpu_tests and <build-dir>/bench/flash_bench; override with
# SACC_GPU_TESTS / SACC_FLASH_BENCH. Shared libraries the device image lacks (libfmt) are looked up in
# <build-dir>/lib. FLASH_BENCH_LENS overrides the d=128 lengths. Logs and JSON land in out-dir ($OUT there).
set -uo pipefail
BUILD=${1:-build}
OUT_DIR=${2:-${OUT:-/tmp/gpu_check}}
TESTS=${SACC_GPU_TESTS:-$BUILD/tests/sacc_gpu_tests}
BENCH=${SACC_FLASH_BENCH:-$BUILD/bench/flash_bench}
LENS=${FLASH_BENCH_LENS:-4096,8192,16384,32768,65536,131072}
mkdir -p "$OUT_DIR"
export LD_LIBRARY_PATH="$BUILD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
summary=()

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT_DIR/gpu.txt"

echo "== GPU tests ($TESTS)"
if "$TESTS" --gtest_filter="${FLASH_TEST_FILTER:-*Flash*}" --gtest_brief=1 >"$OUT_DIR/tests.log" 2>&1; then
  summary+=("tests: PASS")
else
  summary+=("tests: FAIL (see tests.log)")
  status=1
fi
tail -n 30 "$OUT_DIR/tests.log"

echo "== compute-sanitizer memcheck (small shapes)"
small='Shapes/FlashShapeTest.*/L1_*:Shapes/FlashShapeTest.*/L63_*:Shapes/FlashShapeTest.*/L113_*:Shapes/FlashShapeTest.*/L128_*'
if compute-sanitizer --tool memcheck --error-exitcode 7 "$TESTS" --gtest_filter="$small" --gtest_brief=1 \
  >"$OUT_DIR/memcheck.log" 2>&1; then
  summary+=("memcheck: clean")
else
  summary+=("memcheck: FAIL (see memcheck.log)")
  status=1
fi
tail -n 8 "$OUT_DIR/memcheck.log"

echo "== flash_bench"
"$BENCH" --lens "$LENS" --heads 32 --kv-heads 8 --dim 128 --json "$OUT_DIR/flash_bench_d128.json" \
  2>&1 | tee "$OUT_DIR/flash_bench_d128.md" || { summary+=("bench d128: FAIL"); status=1; }
"$BENCH" --lens 4096,16384,65536 --heads 32 --kv-heads 8 --dim 64 --json "$OUT_DIR/flash_bench_d64.json" \
  2>&1 | tee "$OUT_DIR/flash_bench_d64.md" || { summary+=("bench d64: FAIL"); status=1; }

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
