#!/usr/bin/env bash
# Eighteenth session, call A (after scripts/device_stage.sh receive has placed everything under /root/sacc):
# b2 = exp/softmax-overlap 7b5a876 (tile t's S GEMM issued with tile t-1's P V, every wgmma unconditional)
# against a0 = main, in the same call: GPU flash tests of b2, dense vs cuDNN, density sweep, Qwen dense/sparse.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin R=/root/ra; rm -rf $R; mkdir -p $R /work/shared/data
tar -C /work/shared/data -xzf /root/sacc/data/minference.tgz
snap() { tar -C /root -czf $OUT/ra.tgz ra; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
  echo "a0 = main $(cat $B/attention_bench_a0.COMMIT); b2 = exp/softmax-overlap $(cat $B/attention_bench_b2.COMMIT); sacc $(cat $B/COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
SECONDS=0; timeout 60 $B/sacc_gpu_tests_b2 --gtest_filter='*Flash*:*RuntimeCuda*' > $R/tests_b2.log 2>&1
echo "tests b2 rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/tests_b2.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests_b2.log | head -5; snap
n=0; for v in a0 b2 a0 b2; do n=$((n+1)); timeout 60 $B/attention_bench_$v --methods cudnn,dense --lengths 32768,131072 --shapes llama-3.1-8b,d64 --out $R/dense_${v}_$n > $R/dense_${v}_$n.log 2>&1
  echo "dense $v rc=$?: $(grep -E '^\| [0-9]+K \| (dense|cudnn) ' $R/dense_${v}_$n.md | cut -d'|' -f2-5,9 | tr '\n' ';')"; snap; done
for v in a0 b2; do timeout 60 $B/attention_bench_$v --density-sweep --lengths 32768 --shapes llama-3.1-8b,d64 --densities 0.02 0.1 0.3 --out $R/sweep_$v > $R/sweep_$v.log 2>&1; echo "sweep $v rc=$?"; grep -E "^\| (triangular|interval-slash|block-cluster|dense) " $R/sweep_$v.md | cut -d'|' -f2,4-7 | tr '\n' ';'; echo; snap; done
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
for round in 1 2; do for s in sacc sacc_b2; do echo "-- $s round $round"; timeout 90 $B/$s -q bench -m $QWEN --text $TEXT --ctx 16000,32000 --attention dense,sparse -r 5 2>&1 | grep -E '^\| *[0-9]+ \| 0'; done; done 2>&1 | tee $R/qwen_ab.txt; snap
