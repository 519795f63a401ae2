#!/usr/bin/env bash
# Eighteenth session, call D: s1 = exp/max-slack (a row keeps its running max until a tile exceeds it by 8 in
# log2 units; warps whose rows all keep theirs skip the O rescale) against a0 = main, in the same call.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin R=/root/rd; rm -rf $R; mkdir -p $R /work/shared/data
tar -C /work/shared/data -xzf /root/sacc/data/minference.tgz
snap() { tar -C /root -czf $OUT/rd.tgz rd; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
  echo "a0 = main $(cat $B/attention_bench_a0.COMMIT); s1 = exp/max-slack $(cat $B/attention_bench_s1.COMMIT); sacc $(cat $B/COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
SECONDS=0; timeout 90 $B/sacc_gpu_tests_s1 --gtest_filter=-*Cli* > $R/tests_s1.log 2>&1
echo "tests s1 rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $R/tests_s1.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests_s1.log | head -5; snap
n=0; for v in a0 s1 a0 s1; do n=$((n+1)); timeout 60 $B/attention_bench_$v --methods cudnn,dense --lengths 16384,32768,131072 --shapes llama-3.1-8b,d64 --out $R/dense_${v}_$n > $R/dense_${v}_$n.log 2>&1
  echo "dense $v rc=$?: $(grep -E '^\| [0-9]+K \| (dense|cudnn) ' $R/dense_${v}_$n.md | cut -d'|' -f2-4,9 | tr '\n' ';')"; snap; done
for v in a0 s1; do timeout 60 $B/attention_bench_$v --density-sweep --lengths 32768 --shapes llama-3.1-8b,d64 --densities 0.02 0.1 0.3 --out $R/sweep_$v > $R/sweep_$v.log 2>&1; echo "sweep $v rc=$?"; grep -E "^\| (triangular|interval-slash|block-cluster|dense) " $R/sweep_$v.md | cut -d'|' -f2,4,5,7 | tr '\n' ';'; echo; snap; done
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
for round in 1 2; do for s in sacc sacc_s1; do echo "-- $s round $round"; timeout 90 $B/$s -q bench -m $QWEN --text $TEXT --ctx 16000,32000 --attention dense,sparse -r 5 2>&1 | grep -E '^\| *[0-9]+ \| 0'; done; done 2>&1 | tee $R/qwen_ab.txt; snap
P=/tmp/pr; mkdir -p $P; printf 'Explain what a hash table is in two sentences.' > $P/q.txt
for s in sacc sacc_s1; do timeout 60 $B/$s -q generate -m $QWEN -f $P/q.txt -n 32 --attention dense > $R/gen_short_$s.txt 2>&1; done
cmp -s $R/gen_short_sacc.txt $R/gen_short_sacc_s1.txt && echo "short greedy: same" || echo "short greedy: differs"; snap
