#!/usr/bin/env bash
# Nineteenth session, call D: the 128K Block-Cluster row of issue 13 (Llama-3.1-8B shape, density 0.05) with
# exp/bc-warp-select (attention_bench, + the index build's shared-memory opt-in only past 48 KB) against main
# (attention_bench_main): two rounds in alternation, then the plan's kernel times under ncu for each.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH
B=/root/sacc/bin R=/root/rd; rm -rf $R; mkdir -p $R /work/shared/data
tar -C /work/shared/data -xzf /root/sacc/data/minference.tgz
snap() { tar -C /root -czf $OUT/rd.tgz rd; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
  echo "attention_bench $(cat $B/COMMIT) (exp/bc-warp-select); attention_bench_main $(cat $B/attention_bench_main.COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
ARGS="--methods block-cluster --lengths 131072 --shapes llama-3.1-8b,d64 --density 0.05"
n=0; for s in main branch main branch; do n=$((n+1)); ab=$B/attention_bench; [ $s = main ] && ab=$B/attention_bench_main
  timeout 90 $ab $ARGS --out $R/bc_${s}_$n > $R/bc_${s}_$n.log 2>&1; echo "$s rc=$?: $(grep -E '^\| 128K \| block' $R/bc_${s}_$n.md | cut -d'|' -f2-4,7 | tr '\n' ';')"; snap; done
for s in main branch; do ab=$B/attention_bench; [ $s = main ] && ab=$B/attention_bench_main
  timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    -k regex:'pool_kernel|block_cluster|build_index|scan_counts|work_item|choose_pattern' \
    $ab --methods block-cluster --lengths 131072 --shapes llama-3.1-8b --density 0.05 --reps-long 3 > $R/ncu_$s.csv 2> $R/ncu_$s.err
  echo "ncu $s rc=$?"
  python3 - "$R/ncu_$s.csv" <<'PY' | tee $R/ncu_$s.md
import csv, io, re, sys, collections
text = open(sys.argv[1]).read()
rows = list(csv.DictReader(io.StringIO(text[text.index('"ID"'):])))
tot = collections.OrderedDict(); cnt = collections.Counter(); big = collections.Counter()
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    m = re.search(r'(\w+_kernel|work_item_costs)', r["Kernel Name"]); name = m.group(1) if m else r["Kernel Name"][:40]
    v = float(r["Metric Value"].replace(',', '')) / 1e3
    tot[name] = tot.get(name, 0.0) + v; cnt[name] += 1; big[name] = max(big[name], v)
for k, v in tot.items(): print(f"| {k} | {cnt[k]} launches | {v:.1f} us | longest {big[k]:.1f} us |")
PY
  snap
done
