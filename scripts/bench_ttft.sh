#!/usr/bin/env bash
# TTFT and peak memory against context length, ours and HF transformers side by side, in ONE device call
# (issue 6; the paper's Tables 1-2 and Figures 1-2).
#
#   here:   scripts/bench_ttft.sh --prepare     build sacc (CUDA) and copy it with the libraries the GPU image
#                                               lacks into build-ttft/carry
#   device: run with carry ["build-ttft/carry"]:
#           scripts/bench_ttft.sh [--ctx LIST] [--long LIST]
# Writes into $OUT (or bench/results/): hf.json, ttft.md, ttft.json (HF cells merged), ttft.png, memory.png, long.md, logs.
# Environment: SACC_TTFT_MODEL (default llama-3.1-8b), SACC_TTFT_REPEATS (default 3), SACC_TTFT_METHODS
# (default dense,cudnn,sparse,auto), SACC_TTFT_LONG (extra sparse-only lengths), SACC_HF_SECONDS (HF time cap).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${SACC_BUILD_DIR:-build-ttft}

if [ "${1:-}" = "--prepare" ]; then
  set -e
  [ -d "$BUILD" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSACC_BUILD_TESTS=OFF
  cmake "$BUILD" >/dev/null
  ninja -C "$BUILD" -j2 sacc
  source scripts/carry_libs.sh
  carry_binaries "$BUILD/carry" "$BUILD/tools/sacc"
  cp ../shared/data/minference/Llama_3.1_8B_Instruct_128k_heads.json "$BUILD/carry/"
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tools || echo '+local changes')" >"$BUILD/carry/COMMIT"
  du -sh "$BUILD/carry"
  exit 0
fi

CTX=1000,4000,8000,16000,32000,64000,128000
LONG=${SACC_TTFT_LONG:-}
while [ $# -gt 0 ]; do
  case $1 in
    --ctx) CTX=$2; shift 2 ;;
    --long) LONG=$2; shift 2 ;;
    *) echo "bench_ttft: unknown option $1" >&2; exit 2 ;;
  esac
done
MODEL=${SACC_TTFT_MODEL:-llama-3.1-8b}
REPEATS=${SACC_TTFT_REPEATS:-3}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$BUILD/carry${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${SACC_CUDNN_PATH:-}" ]; then
  cudnn_dir=$(python3 -c "import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])" 2>/dev/null) &&
    export SACC_CUDNN_PATH=$cudnn_dir/lib
fi
SACC=$BUILD/carry/sacc
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
status=0

echo "== HF transformers (random:$MODEL, sdpa + eager)"
PYTHONUNBUFFERED=1 timeout "${SACC_HF_SECONDS:-240}" python3 bench/hf_baseline.py --model "$MODEL" --ctx "$CTX" --attn sdpa,eager \
  -r "$REPEATS" -o "$OUT/hf.json" 2>&1 | tee "$OUT/hf.log" | grep -v Warning || status=1

echo "== sacc (random:$MODEL)"
# Sparse and auto use MInference's per-head budget mix for Llama-3.1-8B (the realistic mix; DESIGN.md §5).
"$SACC" -q bench -m "random:$MODEL" --ctx "$CTX" --attention "${SACC_TTFT_METHODS:-dense,cudnn,sparse,auto}" \
  -r "$REPEATS" --pattern-config "$BUILD/carry/Llama_3.1_8B_Instruct_128k_heads.json" \
  --compare "$OUT/hf.json" --out "$OUT/ttft.md" --json "$OUT/ttft.json" 2>&1 | tee "$OUT/sacc.log" || status=1
python3 bench/plot_ttft.py "$OUT/ttft.json" "$OUT" || status=1

if [ -n "$LONG" ]; then
  echo "== long prompts (sparse)"
  # Past the model's declared window (131072 for Llama-3.1): --max-context raises it to the longest length.
  longest=0
  for n in ${LONG//,/ }; do
    case $n in *[kK]) n=$((${n%?} * 1024)) ;; esac
    [ "$n" -gt "$longest" ] && longest=$n
  done
  "$SACC" -q bench -m "random:$MODEL" --ctx "$LONG" --attention sparse -r 1 --warmup 0 --max-context "$longest" \
    --pattern-config "$BUILD/carry/Llama_3.1_8B_Instruct_128k_heads.json" --out "$OUT/long.md" --json "$OUT/long.json" 2>&1 |
    tee "$OUT/long.log" || status=1
fi
cat "$OUT/ttft.md"
exit $status
