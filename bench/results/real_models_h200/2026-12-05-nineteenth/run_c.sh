#!/usr/bin/env bash
# Nineteenth session, call C (after scripts/device_stage.sh receive has placed everything under /root/sacc):
# sacc = exp/bc-warp-select at its third commit (Block-Cluster rows of at most 512 key blocks chosen by one
# warp from registers, longer rows by the CTA; groups of 4 query blocks; the index build walks the staged
# Block-Cluster ids and keeps a bitmap of listed blocks) against sacc_main = main, in the same call: GPU tests
# of the branch, plan kernel times under ncu on the real Qwen prefill at 32000 tokens, Qwen dense/sparse TTFT in
# alternation, greedy continuations, the 128K Block-Cluster row of issue 13, perplexity at 32768 (last 4096).
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin R=/root/rc; rm -rf $R; mkdir -p $R
tar -C /work/shared/data -xzf /root/sacc/data/minference.tgz 2>/dev/null || { mkdir -p /work/shared/data && tar -C /work/shared/data -xzf /root/sacc/data/minference.tgz; }
snap() { tar -C /root -czf $OUT/rc.tgz rc; }
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
  echo "sacc $(cat $B/COMMIT) (exp/bc-warp-select); sacc_main $(cat $B/sacc_main.COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
SECONDS=0; timeout 150 $B/sacc_gpu_tests --gtest_filter='-*Cli*' > $R/tests.log 2>&1
echo "tests rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' $R/tests.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests.log | head -8; snap
for s in sacc_main sacc; do
  timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    -k regex:'pool_kernel|block_cluster|interval_slash|combine_row|choose_pattern|build_index|scan_counts|work_item' \
    $B/$s -q bench -m $QWEN --text $TEXT --ctx 32000 --attention sparse -r 1 > $R/ncu_$s.csv 2> $R/ncu_$s.err
  echo "ncu $s rc=$?"
  python3 - "$R/ncu_$s.csv" <<'PY' | tee $R/ncu_$s.md
import csv, io, sys, collections
text = open(sys.argv[1]).read()
rows = list(csv.DictReader(io.StringIO(text[text.index('"ID"'):])))
tot = collections.OrderedDict(); cnt = collections.Counter()
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    name = (__import__('re').search(r'(\w+_kernel|work_item_costs)', r['Kernel Name']) or [r['Kernel Name'][:40]])[0] + ('<sums>' if 'scores' in r['Kernel Name'] and 'true' in r['Kernel Name'] else '')
    tot[name] = tot.get(name, 0.0) + float(r['Metric Value'].replace(',', '')) / 1e3; cnt[name] += 1
for k, v in tot.items(): print(f"| {k} | {cnt[k]} | {v:.1f} us | {v / cnt[k]:.1f} us |")
print(f"| all | {sum(cnt.values())} | {sum(tot.values()):.1f} us | |")
PY
  snap
done
for round in 1 2; do for s in sacc_main sacc; do echo "-- $s round $round"; timeout 90 $B/$s -q bench -m $QWEN --text $TEXT --ctx 16000,32000 --attention dense,sparse -r 5 2>&1 | grep -E '^\| *[0-9]+ \| 0'; done; done 2>&1 | tee $R/qwen_ab.txt; snap
python3 -c "import gzip,sys; sys.stdout.write(gzip.open('$TEXT','rt',errors='ignore').read()[:112000])" > /tmp/prompt.txt
for s in sacc_main sacc; do timeout 60 $B/$s -q generate -m $QWEN -f /tmp/prompt.txt -n 32 --attention sparse > $R/gen_$s.txt 2>&1; echo "gen $s rc=$?"; done
cmp -s $R/gen_sacc_main.txt $R/gen_sacc.txt && echo "greedy continuations identical" || { echo "greedy continuations differ"; diff $R/gen_sacc_main.txt $R/gen_sacc.txt | head; }; snap
for s in main ""; do ab=$B/attention_bench${s:+_$s}; timeout 90 $ab --methods cudnn,block-cluster --lengths 131072 --shapes llama-3.1-8b,d64 --density 0.05 --out $R/bc128k${s:+_$s} > $R/bc128k${s:+_$s}.log 2>&1
  echo "bc128k ${s:-branch} rc=$?"; grep -E '^\| ' $R/bc128k${s:+_$s}.md | head -8; snap; done
for s in sacc_main sacc; do timeout 120 $B/$s -q eval ppl -m $QWEN --text $TEXT --length 32768 --last 4096 --device cuda --out $R/ppl_$s.json > $R/ppl_$s.log 2>&1; echo "ppl $s rc=$?: $(tail -n 3 $R/ppl_$s.log | tr '\n' ' ')"; snap; done
