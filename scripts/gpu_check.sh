#!/usr/bin/env bash
# One device call for the flash attention kernels: GPU tests, compute-sanitizer (memcheck, racecheck, synccheck,
# initcheck) on small shapes, both kernel bodies, then the kernel micro-benchmark (which verifies before it
# times). Run on the GPU machine from the repo root:
#   scripts/gpu_check.sh [build-dir] [out-dir]
# Binaries default to <build-dir>/tests/sacc_gpu_tests and <build-dir>/bench/flash_bench; override with
# SACC_GPU_TESTS / SACC_FLASH_BENCH. Shared libraries the device image lacks (libfmt) are looked up in
# <build-dir>/lib. FLASH_BENCH_LENS overrides the d=128 lengths. out-dir ($OUT there) receives checks.log,
# flash_bench.md and one flash_bench_<run>.json per benchmark run. GPU_CHECK_PARTS picks parts of
# "flash suite bench" (default all three).
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
has_part() { [[ " ${GPU_CHECK_PARTS:-flash suite bench} " == *" $1 "* ]]; }

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT_DIR/checks.log"

small='Shapes/FlashShapeTest.*/L1_*:Shapes/FlashShapeTest.*/L63_*:Shapes/FlashShapeTest.*/L113_*:Shapes/FlashShapeTest.*/L128_*'
small+=':Suffixes/FlashSuffixTest.*/L1025_*'
# One check: runs the command, adds "LABEL: OK" or "LABEL: FAIL" to the summary, prints the last LINES lines of
# its output and appends all of it to checks.log.
run_check() {  # label ok-word lines command...
  local label=$1 ok=$2 lines=$3
  shift 3
  if "$@" >"$OUT_DIR/tests.tmp" 2>&1; then
    summary+=("$label: $ok")
  else
    summary+=("$label: FAIL (see checks.log)")
    status=1
  fi
  tail -n "$lines" "$OUT_DIR/tests.tmp"
  cat "$OUT_DIR/tests.tmp" >>"$OUT_DIR/checks.log"
}

# Both kernel bodies: sm90 (warp-specialised TMA + wgmma, the Hopper default) and mma (mma.sync, the pre-Hopper
# path, forced with SACC_FLASH_BODY=mma). A deadlocked kernel is stopped by timeout instead of eating the lease.
has_part flash && for body in sm90 mma; do
  echo "== GPU tests, $body body ($TESTS)"
  run_check "tests ($body)" PASS 30 env SACC_FLASH_BODY=$body timeout 180 "$TESTS" \
    --gtest_filter="${FLASH_TEST_FILTER:-*Flash*}" --gtest_brief=1

  # Every compute-sanitizer tool on the small shapes: memcheck (out-of-bounds, misaligned), racecheck (shared
  # memory hazards between the producer and consumer warps), synccheck (barrier misuse), initcheck (reads of
  # uninitialised global memory). SANITIZER_TOOLS picks a subset; racecheck is the slowest, hence the timeout.
  for tool in ${SANITIZER_TOOLS:-memcheck racecheck synccheck initcheck}; do
    echo "== compute-sanitizer $tool, $body body (small shapes)"
    run_check "$tool ($body)" clean 4 env SACC_FLASH_BODY=$body timeout 900 compute-sanitizer --tool "$tool" \
      --error-exitcode 7 "$TESTS" --gtest_filter="$small" --gtest_brief=1
  done
done

# memcheck and synccheck over the rest of the suite (plan, estimators, decode, graphs, GEMMs; the whole suite
# takes ~30 s under each on the H200). Left out: the out-of-memory tests, whose cudaMalloc failures are the
# point and are reported as API errors, the CLI tests (they need the staged models) and two-GPU tests.
# SUITE_TOOLS adds racecheck and initcheck (each far slower over the suite: the suite then runs as
# SUITE_SHARDS gtest shards in parallel on the one GPU, each under its own sanitizer process, within
# SUITE_TIMEOUT seconds).
rest=${SUITE_FILTER:-'-*Cli*:*OutOfMemory*:*MultiGpu*'}
# initcheck over the suite checks our kernels and leaves cuBLASLt's and cuDNN's out (their names: nvjet, xmma,
# cutlass, gemm/gemv, splitKreduce, cudnn): instrumenting the libraries' GEMMs and SDPA is what kept those runs
# from finishing, and initcheck cannot see their TMA stores (gpu_sanitizer_h200.md). Every read of a library's
# output by one of our kernels is still checked. SUITE_LIBRARY_KERNELS=1 checks them too. racecheck keeps
# them: with them left out, the first cuBLASLt GEMM under racecheck fails ("failed to handle a hardware
# exception", cuBLASLt status 13). SUITE_PRINT_LIMIT caps the reports printed per shard.
library_excludes=()
if [ "${SUITE_LIBRARY_KERNELS:-0}" != 1 ]; then
  for name in nvjet xmma cutlass gemm gemv splitKreduce cudnn; do
    library_excludes+=(--kernel-name-exclude "kns=$name")
  done
fi
suite_shard() {  # tool shard shards: one shard of the suite under the tool, its log in suite_<tool>_<shard>.log
  local excludes=()
  [ "$1" = initcheck ] && excludes=("${library_excludes[@]}")
  GTEST_TOTAL_SHARDS=$3 GTEST_SHARD_INDEX=$2 timeout "${SUITE_TIMEOUT:-300}" compute-sanitizer --tool "$1" \
    "${excludes[@]}" --print-limit "${SUITE_PRINT_LIMIT:-100}" --error-exitcode 7 "$TESTS" --gtest_filter="$rest" --gtest_brief=1 \
    >"$OUT_DIR/suite_$1_$2.log" 2>&1
}
suite_check() {  # tool: every shard in parallel; fails when any shard fails
  local shards=${SUITE_SHARDS:-1} pids=() rc=0 i
  for ((i = 0; i < shards; i++)); do
    suite_shard "$1" "$i" "$shards" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "shard $i of $shards: exit $?"; rc=1; }
    tail -n 3 "$OUT_DIR/suite_$1_$i.log"
  done
  return $rc
}
if has_part suite; then
  for tool in ${SUITE_TOOLS:-memcheck synccheck}; do
    echo "== compute-sanitizer $tool, every other GPU test"
    run_check "$tool (suite)" clean 40 suite_check "$tool"
  done
fi
rm -f "$OUT_DIR/tests.tmp"

has_part bench && echo "== flash_bench"
bench() {  # name body args...
  local name=$1 body=$2
  shift 2
  echo "-- $name ($body body)"
  SACC_FLASH_BODY=$body timeout 240 "$BENCH" "$@" --json "$OUT_DIR/flash_bench_$name.json" 2>&1 | tee -a "$OUT_DIR/flash_bench.md" \
    || { summary+=("bench $name: FAIL"); status=1; }
}
if has_part bench; then
  bench d128 sm90 --lens "$LENS" --heads 32 --kv-heads 8 --dim 128
  bench d64 sm90 --lens 4096,16384,65536 --heads 32 --kv-heads 8 --dim 64
  bench d128_mma mma --lens 16384,65536 --heads 32 --kv-heads 8 --dim 128
fi

echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
