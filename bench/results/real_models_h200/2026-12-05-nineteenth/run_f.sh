#!/usr/bin/env bash
# Nineteenth session, call F: Qwen TTFT with HF transformers in the same call, main with the Block-Cluster
# warp selection and the index build walking the staged ids (3029ce5).
cd "$(dirname "$0")/../../../.."
export PATH=/usr/local/cuda/bin:$PATH
R=/root/rf; rm -rf $R; mkdir -p $R
( sleep 240; tar -C /root -czf $OUT/rf.tgz rf ) &
SACC_REAL_MODELS=qwen OUT=$R timeout 280 bash scripts/bench_real_models.sh ttft 2>&1 | grep -vE "it/s|%\|" | tail -40
tar -C /root -czf $OUT/rf.tgz rf
