#!/usr/bin/env bash
# Eighteenth session, call B: the default's index on real Qwen Q/K/V at 32768 tokens, per layer: density split
# into key blocks and gathered columns, plan and attention time; the same for its two halves alone; one ncu of
# the sparse flash kernel on a middle layer.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
R=/root/rb; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/rb.tgz rb; }
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "sacc $(cat /root/sacc/bin/COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt
DEFAULT=$(sacc version | sed -n 's/^default sparse setting: //p'); echo "default: $DEFAULT" | tee -a $R/gpu.txt
SECONDS=0; [ -f /tmp/qkv32k/layer_23.safetensors ] || timeout 200 sacc -q eval recall -m $QWEN --text $TEXT --length 32768 --layers $(seq -s, 0 23) --sparse "" --device cuda --dump-qkv /tmp/qkv32k > $R/dump.log 2>&1
echo "dump rc=$? ${SECONDS}s"; ls /tmp/qkv32k | wc -l
for layer in $(seq 0 23); do for p in "$DEFAULT" "interval-slash:1000,256@0.95" "block-cluster:512@0.99"; do
  echo "layer $layer: $(timeout 30 sacc -q attention --in /tmp/qkv32k/layer_$layer.safetensors --pattern "$p" --device cuda 2>&1 | head -1)"; done; done | tee $R/layers.txt; snap
timeout 120 ncu --set full -k regex:flash --launch-count 1 sacc -q attention --in /tmp/qkv32k/layer_12.safetensors --pattern "$DEFAULT" --device cuda > $R/ncu_layer12_default.txt 2>&1; echo "ncu rc=$?"; snap
timeout 120 ncu --set full -k regex:flash --launch-count 1 sacc -q attention --in /tmp/qkv32k/layer_12.safetensors --pattern dense --device cuda > $R/ncu_layer12_dense.txt 2>&1; echo "ncu dense rc=$?"; snap
