#!/usr/bin/env bash
# Eighteenth session, call F: `auto` on the H100 with its shipped break-even (no calibration cache on the
# machine): sacc generate with no flags on a ~27K-token prose prompt, and sacc bench auto beside dense/sparse.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/empty-cache
R=/root/rf; rm -rf $R $SACC_CACHE_DIR; mkdir -p $R
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "sacc $(cat /root/sacc/bin/COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
python3 -c "import gzip,sys; sys.stdout.write(gzip.open('$TEXT','rt',errors='ignore').read()[:112000])" > /tmp/prompt.txt
for run in 1 2; do timeout 60 sacc generate -m $QWEN -f /tmp/prompt.txt -n 16 2>&1 | grep -E "auto:|prompt .* tok" ; done 2>&1 | tee $R/generate_auto.txt
timeout 120 sacc -q bench -m $QWEN --text $TEXT --ctx 8000,12000,16000,32000 --attention dense,sparse,auto -r 3 2>&1 | grep -E "^\| *[0-9]+ \| 0|auto:" | tee $R/bench_auto.txt
tar -C /root -czf $OUT/rf.tgz rf
