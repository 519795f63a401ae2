#!/usr/bin/env bash
# Nineteenth session, call E: exp/bc-warp-select at its final commit (Block-Cluster rows of at most 512 key
# blocks: softmax and choice by one warp, keys in registers; longer rows by the whole CTA as on main; the index
# build walks the staged Block-Cluster ids and keeps a bitmap of listed blocks) against main, in one call: GPU
# tests of the branch; the 128K Block-Cluster row (issue 13) in alternation; plan kernel times under ncu on the
# real Qwen prefill at 32000 tokens; Qwen dense/sparse TTFT in alternation; greedy continuations; perplexity at
# 32768 (last 4096) of the default sparse setting.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin R=/root/re; rm -rf $R; mkdir -p $R /work/shared/data
tar -C /work/shared/data -xzf /root/sacc/data/minference.tgz
snap() { tar -C /root -czf $OUT/re.tgz re; }
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
DEFAULT=$($B/sacc version | sed -n 's/^default sparse setting: //p')
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
  echo "sacc $(cat $B/COMMIT) (exp/bc-warp-select); sacc_main $(cat $B/sacc_main.COMMIT); default '$DEFAULT'"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
SECONDS=0; timeout 150 $B/sacc_gpu_tests --gtest_filter='-*Cli*' > $R/tests.log 2>&1
echo "tests rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/tests.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests.log | head -8; snap
ARGS="--methods block-cluster --lengths 131072 --shapes llama-3.1-8b,d64 --density 0.05"
n=0; for s in main branch main branch; do n=$((n+1)); ab=$B/attention_bench; [ $s = main ] && ab=$B/attention_bench_main
  timeout 90 $ab $ARGS --out $R/bc_${s}_$n > $R/bc_${s}_$n.log 2>&1; echo "128K $s rc=$?: $(grep -E '^\| 128K \| block' $R/bc_${s}_$n.md | cut -d'|' -f2-4,8 | tr '\n' ';')"; snap; done
for s in sacc_main sacc; do
  timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    -k regex:'pool_kernel|block_cluster|interval_slash|combine_row|choose_pattern|build_index|scan_counts|work_item' \
    $B/$s -q bench -m $QWEN --text $TEXT --ctx 32000 --attention sparse -r 1 > $R/ncu_$s.csv 2> $R/ncu_$s.err
  echo "ncu $s rc=$? (two prefills: warm-up and timed)"
  python3 - "$R/ncu_$s.csv" <<'PY' | tee $R/ncu_$s.md
import csv, io, re, sys, collections
text = open(sys.argv[1]).read()
rows = list(csv.DictReader(io.StringIO(text[text.index('"ID"'):])))
tot = collections.OrderedDict(); cnt = collections.Counter()
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    m = re.search(r'(\w+_kernel|work_item_costs)', r["Kernel Name"]); name = m.group(1) if m else r["Kernel Name"][:40]
    tot[name] = tot.get(name, 0.0) + float(r["Metric Value"].replace(',', '')) / 1e3; cnt[name] += 1
for k, v in tot.items(): print(f"| {k} | {cnt[k]} | {v:.1f} us | {v / cnt[k]:.1f} us |")
print(f"| all | {sum(cnt.values())} | {sum(tot.values()):.1f} us | |")
PY
  snap
done
for round in 1 2; do for s in sacc_main sacc; do echo "-- $s round $round"; timeout 90 $B/$s -q bench -m $QWEN --text $TEXT --ctx 16000,32000 --attention dense,sparse -r 5 2>&1 | grep -E '^\| *[0-9]+ \| 0'; done; done 2>&1 | tee $R/qwen_ab.txt; snap
python3 -c "import gzip,sys; sys.stdout.write(gzip.open('$TEXT','rt',errors='ignore').read()[:112000])" > /tmp/prompt.txt
for s in sacc_main sacc; do timeout 60 $B/$s -q generate -m $QWEN -f /tmp/prompt.txt -n 32 --attention sparse > $R/gen_$s.txt 2>&1; echo "gen $s rc=$?"; done
diff <(grep -v '^prompt ' $R/gen_sacc_main.txt) <(grep -v '^prompt ' $R/gen_sacc.txt) > /dev/null && echo "greedy continuations identical (timing line aside)" || echo "greedy continuations differ"; snap
for s in sacc_main sacc; do timeout 150 $B/$s -q eval ppl -m $QWEN --text $TEXT --length 32768 --last 4096 --device cuda --sparse "$DEFAULT" --out $R/ppl_$s.json > $R/ppl_$s.log 2>&1; echo "ppl $s rc=$?: $(tail -n 2 $R/ppl_$s.log | tr '\n' ' ')"; snap; done
