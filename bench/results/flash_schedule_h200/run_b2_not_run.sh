#!/usr/bin/env bash
# Session 17, call 3: b2 = overlapped softmax with every wgmma unconditional (no C7520 serialisation) vs a0 = main.
P=/root/pp; rm -rf $P; mkdir -p $P; tar -C $P -xJf .carry/pp/bin.tar.xz
export LD_LIBRARY_PATH=$P/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
mkdir -p /work/shared/data && cp -r $P/minference /work/shared/data/
R=/root/r3; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/r3.tgz r3; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader; echo "a0 = main 0cd4147; b2 = exp/softmax-overlap"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
SECONDS=0; timeout 40 $P/bin/sacc_gpu_tests_b2 --gtest_filter='*Flash*' > $R/tests_b2.log 2>&1; echo "tests b2 rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/tests_b2.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests_b2.log | head -5; snap
n=0; for v in a0 b2 a0 b2; do n=$((n+1)); SECONDS=0; timeout 40 $P/bin/attention_bench_$v --methods cudnn,dense --lengths 32768,131072 --shapes llama-3.1-8b,d64 --out $R/dense_${v}_$n > $R/dense_${v}_$n.log 2>&1
  echo "dense $v rc=$? ${SECONDS}s: $(grep -E '^\| [0-9]+K \| (dense|cudnn) ' $R/dense_${v}_$n.md | cut -d'|' -f2-5,9 | tr '\n' ';')"; snap; done
for v in a0 b2; do timeout 30 $P/bin/attention_bench_$v --density-sweep --lengths 32768 --shapes llama-3.1-8b,d64 --densities 0.02 0.3 --out $R/sweep_$v > $R/sweep_$v.log 2>&1; echo "sweep $v rc=$?"; grep -E "^\| (triangular|interval-slash|dense) " $R/sweep_$v.md | cut -d'|' -f2,4-7 | tr '\n' ';'; echo; snap; done
SECONDS=0; timeout 40 $P/bin/sacc_gpu_tests_b2 --gtest_filter='Plan*:*RuntimeCuda*' > $R/tests2_b2.log 2>&1; echo "tests2 b2 rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/tests2_b2.log | tr '\n' ' ')"; snap
