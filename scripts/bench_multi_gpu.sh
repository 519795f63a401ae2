#!/usr/bin/env bash
# Two GPUs (issue 8) in ONE device call: the multi-GPU GPU tests, a greedy-generation smoke test per mode,
# then TTFT and peak memory per GPU of random:llama-3.1-8b with sparse prefill (MInference's per-head mix) on
# one GPU, layer split under 24 GiB per GPU (the paper's 2x24 GB setting), and tensor parallel.
#
#   here:   scripts/bench_multi_gpu.sh --prepare    build sacc + sacc_gpu_tests (Release) in build-multigpu and
#                                                   pack them with the libraries the GPU image lacks into
#                                                   build-multigpu/carry/bundle.tar.xz (~9 MB instead of 57)
#   device: kind nvidia-h200-x2, carry ["build-multigpu/carry"]:
#           scripts/bench_multi_gpu.sh [--ctx LIST] [--gpu-mem SIZE]
# Writes into $OUT (or bench/results/): multi_gpu_h200x2.md / .json, tests.log, generate.log, bench.log, gpu.txt.
# Environment: SACC_MG_REPEATS (default 3), SACC_MG_MODEL (default llama-3.1-8b).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${SACC_BUILD_DIR:-build-multigpu}
CARRY=$BUILD/carry
BIN=${SACC_MG_BIN:-/tmp/sacc_multi_gpu}  # where the device unpacks the bundle

if [ "${1:-}" = "--prepare" ]; then
  set -e
  [ -d "$BUILD" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake "$BUILD" >/dev/null
  ninja -C "$BUILD" -j2 sacc sacc_gpu_tests
  source scripts/carry_libs.sh
  rm -rf "$BUILD/stage" "$CARRY"
  carry_binaries "$BUILD/stage" "$BUILD/tools/sacc" "$BUILD/tests/sacc_gpu_tests"
  cp ../shared/data/minference/Llama_3.1_8B_Instruct_128k_heads.json "$BUILD/stage/"
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tools tests || echo '+local changes')" \
    >"$BUILD/stage/COMMIT"
  mkdir -p "$CARRY"
  tar -C "$BUILD/stage" -cJf "$CARRY/bundle.tar.xz" .
  du -sh "$CARRY"
  exit 0
fi

CTX=8192,32768,131072
GPU_MEM=24GiB
while [ $# -gt 0 ]; do
  case $1 in
    --ctx) CTX=$2; shift 2 ;;
    --gpu-mem) GPU_MEM=$2; shift 2 ;;
    *) echo "bench_multi_gpu: unknown option $1" >&2; exit 2 ;;
  esac
done
REPEATS=${SACC_MG_REPEATS:-3}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
# NVLink multicast stays off on these shared machines (sacc sets it too, before NCCL starts).
export NCCL_NVLS_ENABLE=0
# NCCL comes with PyTorch's pip package there; sacc opens libnccl.so.2 at run time.
nccl_lib=$(python3 -c "import nvidia.nccl as m; print(list(m.__path__)[0])" 2>/dev/null)/lib
mkdir -p "$BIN"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$CARRY/bundle.tar.xz" "$BIN" ||
  exit 1
export LD_LIBRARY_PATH="$BIN:$nccl_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
SACC=$BIN/sacc
MODEL=random:${SACC_MG_MODEL:-llama-3.1-8b}
PATTERNS=$BIN/Llama_3.1_8B_Instruct_128k_heads.json
status=0
{ nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv; nvidia-smi topo -m; } | tee "$OUT/gpu.txt"

echo "== GPU tests (multi-GPU and single-GPU runtime)"
timeout 150 "$BIN/sacc_gpu_tests" --gtest_filter='*MultiGpu*:*RuntimeCuda*' 2>&1 | tee "$OUT/tests.log" | tail -n 25 ||
  status=1

echo "== greedy generation, 4000-token prompt, 16 tokens, per mode"
for mode in one layer tensor; do
  flags=()
  [ "$mode" = one ] || flags=(--gpus 0,1 --split "$mode")
  [ "$mode" = layer ] && flags+=(--gpu-mem "$GPU_MEM")
  echo "-- $mode ${flags[*]}" | tee -a "$OUT/generate.log"
  timeout 60 "$SACC" -q generate -m "$MODEL" --prompt-tokens 4000 -n 16 --attention sparse \
    --pattern-config "$PATTERNS" "${flags[@]}" --json 2>&1 | tee -a "$OUT/generate.log" | cut -c1-400 || status=1
done

echo "== sacc bench ($MODEL, sparse, ctx $CTX)"
COMMON=(-m "$MODEL" --ctx "$CTX" --attention sparse -r "$REPEATS" --pattern-config "$PATTERNS")
commands=()
run_bench() {  # json-out compare-json extra-flags...
  local json=$1 compare=$2
  shift 2
  local cmd=("$SACC" -q bench "${COMMON[@]}" "$@" --json "$json" --out "${json%.json}.md")
  [ -n "$compare" ] && cmd+=(--compare "$compare")
  commands+=("${cmd[*]}")
  timeout 150 "${cmd[@]}" 2>&1 | tee -a "$OUT/bench.log" || status=1
}
run_bench /tmp/mg_one.json ""
run_bench /tmp/mg_layer.json /tmp/mg_one.json --gpus 0,1 --split layer --gpu-mem "$GPU_MEM"
run_bench /tmp/mg_tensor.json /tmp/mg_layer.json --gpus 0,1 --split tensor

{
  echo "# Two GPUs: one GPU vs layer split (--gpu-mem $GPU_MEM per GPU) vs tensor parallel"
  echo
  echo "- commit: $(cat "$BIN/COMMIT" 2>/dev/null)"
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- GPUs: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | paste -sd';')"
  echo "- NCCL: $nccl_lib"
  echo "- commands:"
  for c in "${commands[@]}"; do echo "  - \`${c//"$BIN"/carry}\`"; done
  echo
  echo "Peak memory per GPU is the larger of our allocator's peak and the device's own (cudaMemGetInfo: CUDA"
  echo "context, cuBLASLt and NCCL buffers included); the cap bounds our allocations."
  echo
  cat /tmp/mg_tensor.md 2>/dev/null
} >"$OUT/multi_gpu_h200x2.md"
cp /tmp/mg_tensor.json "$OUT/multi_gpu_h200x2.json" 2>/dev/null || status=1
cat "$OUT/multi_gpu_h200x2.md"
exit $status
