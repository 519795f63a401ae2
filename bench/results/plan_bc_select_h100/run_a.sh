#!/usr/bin/env bash
# Session 16, call A: GPU tests of the two plan-kernel variants, then 128K density-0.05 attention (plan included).
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin
R=/root/a16; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/a16.tgz a16; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; echo "base: $(cat $B/COMMIT) (main); _bc: + exp/bc-select-groups 9def778 estimate_block_cluster.cu; _is: + exp/is-select-staged 2444d8e estimate_interval_slash_select.cu"; date -u +%FT%TZ; } > $R/gpu.txt
cat $R/gpu.txt
for v in _bc _is; do
  SECONDS=0
  timeout 150 $B/sacc_gpu_tests$v --gtest_filter=-*Cli* > $R/gpu_tests$v.log 2>&1
  echo "gpu tests$v rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/gpu_tests$v.log | tr '\n' ' ')"
  grep -E '^\[  FAILED' $R/gpu_tests$v.log | head -10
  snap
done
for v in _base _bc _is; do
  SECONDS=0
  timeout 100 $B/attention_bench$v --methods cudnn,triangular,block-cluster --lengths 131072 --shapes llama-3.1-8b --density 0.05 --minference .carry/run/heads.json --out $R/d005$v > $R/d005$v.log 2>&1
  echo "d005$v rc=$? ${SECONDS}s"; grep -E "^\| 128K" $R/d005$v.md | cut -d'|' -f2-9
  snap
done
