#!/usr/bin/env bash
# The attention benchmark on the GPU machine, in one device call: the baseline GPU tests, then attention_bench
# (which verifies every method before it times it). Results land in $OUT (the device tool's folder) or
# bench/results/.
#
#   here:   scripts/bench_attention.sh --prepare    build attention_bench and sacc_gpu_tests and copy them into
#                                                    build-baselines/carry with what the GPU machine lacks
#                                                    (fmt/gtest/... libraries, the MInference config, the commit)
#   device: run with carry ["build-baselines/carry"]:
#           scripts/bench_attention.sh [attention_bench options...]
#           e.g. scripts/bench_attention.sh --lengths 4096,8192 --shapes d64
# Environment: SACC_BUILD_DIR (default build-baselines), SACC_CUDNN_PATH (default: the cuDNN inside PyTorch's
# Python packages), SACC_BENCH_SECONDS (time budget of the sweep, default 300), SACC_GPU_TESTS (the gtest binary
# holding the baseline tests, default the carried sacc_gpu_tests).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${SACC_BUILD_DIR:-build-baselines}
CONFIG=Llama_3.1_8B_Instruct_128k_heads.json

if [ "${1:-}" = "--prepare" ]; then
  set -e
  [ -d "$BUILD" ] || cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  ninja -C "$BUILD" -j2 attention_bench sacc_gpu_tests
  mkdir -p "$BUILD/carry"
  cp "$BUILD/bench/attention_bench" "$BUILD/tests/sacc_gpu_tests" "$BUILD/carry/"
  # Shared libraries the binaries need that the GPU image does not have (it has CUDA's own and glibc/libstdc++).
  for binary in "$BUILD/carry/attention_bench" "$BUILD/carry/sacc_gpu_tests"; do
    ldd "$binary" | awk '/=> \// {print $3}' | { grep -E 'libfmt|libgtest|libgmock|libopenblas|libpcre2|libgfortran|libquadmath' || true; } |
      while read -r lib; do cp -L "$lib" "$BUILD/carry/"; done
  done
  cp ../shared/data/minference/$CONFIG "$BUILD/carry/"
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench tests || echo '+local changes')" \
    > "$BUILD/carry/COMMIT"
  du -sh "$BUILD/carry"
  exit 0
fi

OUT=${OUT:-bench/results}
mkdir -p "$OUT"
# cuDNN 9 ships inside PyTorch's Python packages there; cudnn_sdpa.cpp dlopens it from SACC_CUDNN_PATH. The other
# nvidia/*/lib folders hold the CUDA 13 runtime and NVRTC that cudnn-frontend and cuDNN's engines load by name.
if [ -z "${SACC_CUDNN_PATH:-}" ]; then
  cudnn_dir=$(python3 -c "import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])" 2>/dev/null) &&
    export SACC_CUDNN_PATH=$cudnn_dir/lib
fi
nvidia_libs=$(python3 -c "import nvidia, os; print(':'.join(p + '/' + d + '/lib' for p in nvidia.__path__ for d in
  sorted(os.listdir(p)) if os.path.isdir(p + '/' + d + '/lib')))" 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/$BUILD/carry:${nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "bench_attention: SACC_CUDNN_PATH=${SACC_CUDNN_PATH:-unset}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)
commit=$(cat "$BUILD/carry/COMMIT" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)
config="$BUILD/carry/$CONFIG"
[ -f "$config" ] || config=../shared/data/minference/$CONFIG

status=0
"${SACC_GPU_TESTS:-$BUILD/carry/sacc_gpu_tests}" --gtest_filter='CudnnSdpa*:*/CudnnSdpaTest.*:EagerAttention*:*/EagerAttentionTest.*' \
  2>&1 | tee "$OUT/baseline_tests.log" | tail -n 40 || status=1

"$BUILD/carry/attention_bench" --minference "$config" --out "$OUT/attention_h200" --driver "$driver" \
  --commit "$commit" --max-seconds "${SACC_BENCH_SECONDS:-300}" "$@" 2>&1 | tee "$OUT/attention_bench.log" || status=1
exit $status
