#!/usr/bin/env bash
# Nineteenth session, call I: compute-sanitizer racecheck, memcheck and synccheck over the plan's GPU tests
# (the Block-Cluster selection by warps, the index build's bitmap, the score kernels' cp.async rows) at main.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH
R=/root/ri; rm -rf $R; mkdir -p $R
( sleep 170; tar -C /root -czf $OUT/ri.tgz ri ) &
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "sacc_gpu_tests $(cat /root/sacc/bin/COMMIT)"; date -u +%FT%TZ; } | tee $R/gpu.txt
GPU_CHECK_PARTS=suite SUITE_FILTER='*Plan*' SUITE_TOOLS="racecheck memcheck synccheck" SUITE_SHARDS=4 SUITE_TIMEOUT=100 \
  SACC_GPU_TESTS=/root/sacc/bin/sacc_gpu_tests timeout 185 bash scripts/gpu_check.sh build $R 2>&1 | tail -30
tar -C /root -czf $OUT/ri.tgz ri
