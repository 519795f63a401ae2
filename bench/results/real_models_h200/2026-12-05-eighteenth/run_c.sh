#!/usr/bin/env bash
# Eighteenth session, call C: where the prefill's wall time goes beyond its kernels (nsys timeline of one
# 32000-token prefill, dense and the default sparse), and the GPU linear-layer chunk (rows per GEMM) swept.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
R=/root/rc; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/rc.tgz rc; }
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
{ nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader; echo "sacc $(cat /root/sacc/bin/COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
for round in 1 2; do for c in 4096 8192 16384 32768; do echo "-- chunk $c round $round"; timeout 60 sacc -q bench -m $QWEN --text $TEXT --ctx 16000,32000 --attention dense,sparse -r 5 --chunk $c 2>&1 | grep -E '^\| *[0-9]+ \| 0'; done; done 2>&1 | tee $R/chunk.txt; snap
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys 2>/dev/null | head -1); echo "nsys: ${NSYS:-none}"
if [ -n "$NSYS" ]; then
  for m in dense sparse; do
    timeout 120 $NSYS profile -t cuda,nvtx -o $R/n_$m --force-overwrite true sacc -q bench -m $QWEN --text $TEXT --ctx 32000 --attention $m -r 1 --warmup 1 > $R/nsys_$m.log 2>&1
    timeout 120 $NSYS stats -r cuda_gpu_trace,cuda_api_sum -f csv -o $R/n_$m $R/n_$m.nsys-rep > $R/nsys_stats_$m.log 2>&1
    echo "nsys $m rc=$?"; ls $R | grep "n_$m"; rm -f $R/n_$m.nsys-rep $R/n_$m.sqlite; gzip -f $R/n_${m}_cuda_gpu_trace.csv 2>/dev/null; snap
  done
fi
