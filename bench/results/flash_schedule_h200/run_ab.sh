#!/usr/bin/env bash
# Flash-kernel scheduling A/B (session 17): a0 = main's Hopper body; a1 = + ping-pong turns between the two
# consumer warpgroups; b0 = tile t's S GEMM issued with tile t-1's P V (softmax overlapped, K/V stages with
# their own barriers); b1 = b0 + ping-pong. GPU tests against the oracle, dense vs cuDNN, sweep, 128K d0.05.
export PATH=/usr/local/cuda/bin:$PATH
P=/root/pp; rm -rf $P; mkdir -p $P; tar -C $P -xJf .carry/pp/bin.tar.xz
export LD_LIBRARY_PATH=$P/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p /work/shared/data && cp -r $P/minference /work/shared/data/
R=/root/r1; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/r1.tgz r1; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader; echo "base 0cd4147 (a0); a1 ping-pong; b0 overlapped softmax; b1 both"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
H=$P/minference/Llama_3.1_8B_Instruct_128k_heads.json
tests() { SECONDS=0; timeout $2 $P/bin/sacc_gpu_tests_$1 --gtest_filter="$3" > $R/tests_$1.log 2>&1
  echo "tests $1 rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/tests_$1.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests_$1.log | head; snap; }
dense() { SECONDS=0; timeout 120 $P/bin/attention_bench_$1 --methods cudnn,dense --lengths $3 --shapes llama-3.1-8b,d64 --out $R/dense_$1_$2 > $R/dense_$1_$2.log 2>&1
  echo "dense $1 $2 rc=$? ${SECONDS}s"; grep -E "\| (dense|cudnn) " $R/dense_$1_$2.md | cut -d'|' -f2-5,9 | tr '\n' ';'; echo; snap; }
tests b1 60 '*Flash*'
for v in a0 b0 b1 a1; do dense $v r1 32768,131072; done
for v in b1 b0 a0; do dense $v r2 32768; done
for v in a0 b1; do
  SECONDS=0; timeout 60 $P/bin/attention_bench_$v --density-sweep --lengths 32768 --shapes llama-3.1-8b,d64 --densities 0.02 0.3 --out $R/sweep_$v > $R/sweep_$v.log 2>&1
  echo "sweep $v rc=$? ${SECONDS}s"; snap
done
tests b0 80 '*Flash*:*RuntimeCuda*'
