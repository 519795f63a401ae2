#!/usr/bin/env bash
# Nineteenth session, call G: is auto's +0.2 ms over dense at 1000-2000 tokens (call F) the order of the bench's
# methods? Qwen, `sacc bench --attention` in both orders, twice.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
R=/root/rg; rm -rf $R; mkdir -p $R
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "sacc $(cat /root/sacc/bin/COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
for order in dense,auto auto,dense dense,auto auto,dense; do echo "-- $order"
  timeout 60 sacc -q bench -m $QWEN --text $TEXT --ctx 1000,2000,4000 --attention $order -r 5 -o json 2>/dev/null |
    python3 -c "import json,sys; d=json.load(sys.stdin); [print(c['method'], c['ctx'], round(c['ttft_ms']['median'], 3)) for c in d['cells']]"
done 2>&1 | tee $R/order.txt
tar -C /root -czf $OUT/rg.tgz rg
