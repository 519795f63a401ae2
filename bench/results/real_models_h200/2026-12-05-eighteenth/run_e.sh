#!/usr/bin/env bash
# Eighteenth session, call E: Qwen TTFT with HF transformers in the same call, main with the GPU linear chunk
# sized by the model (16384 rows for Qwen2.5-0.5B).
cd "$(dirname "$0")/../../../.."
export PATH=/usr/local/cuda/bin:$PATH
R=/root/re; rm -rf $R; mkdir -p $R
( sleep 240; tar -C /root -czf $OUT/re.tgz re ) &
SACC_REAL_MODELS=qwen OUT=$R timeout 280 bash scripts/bench_real_models.sh ttft 2>&1 | grep -vE "it/s|%\|" | tail -40
tar -C /root -czf $OUT/re.tgz re
