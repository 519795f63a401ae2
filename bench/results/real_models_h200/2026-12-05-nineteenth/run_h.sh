#!/usr/bin/env bash
# Nineteenth session, call H: exp/is-cpasync (the Interval-Slash score kernels copy the estimating query rows
# with cp.async beside the first K tile, instead of plain loads) against main (5585b15), in one call: the plan
# GPU tests of the branch, plan kernel times under ncu on the real Qwen prefill at 32000 tokens, Qwen
# dense/sparse TTFT in alternation, greedy continuations.
cd "$(dirname "$0")/../../../.."
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin R=/root/rh; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/rh.tgz rh; }
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf TEXT=$SACC_DATA_DIR/jargon.txt.gz
{ nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv,noheader
  echo "sacc $(cat $B/COMMIT) (exp/is-cpasync); sacc_main $(cat $B/sacc_main.COMMIT)"; date -u +%FT%TZ; } > $R/gpu.txt; cat $R/gpu.txt
SECONDS=0; timeout 90 $B/sacc_gpu_tests --gtest_filter='*Plan*:*Estimat*:*Minference*' > $R/tests.log 2>&1
echo "tests rc=$? ${SECONDS}s: $(grep -E '^\[  (PASSED|FAILED) ' $R/tests.log | tr '\n' ' ')"; grep -E '^\[  FAILED' $R/tests.log | head -8; snap
for s in sacc_main sacc; do
  timeout 100 ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
    -k regex:'pool_kernel|block_cluster|interval_slash|combine_row|choose_pattern|build_index|scan_counts|work_item' \
    $B/$s -q bench -m $QWEN --text $TEXT --ctx 32000 --attention sparse -r 1 2> $R/ncu_$s.err | gzip > $R/ncu_$s.csv.gz
  echo "ncu $s rc=$? (two prefills: warm-up and timed)"
  python3 - "$R/ncu_$s.csv.gz" <<'PY' | tee $R/ncu_$s.md
import csv, gzip, io, re, sys, collections
text = gzip.open(sys.argv[1], 'rt').read()
rows = list(csv.DictReader(io.StringIO(text[text.index('"ID"'):])))
tot = collections.OrderedDict(); cnt = collections.Counter()
for r in rows:
    if r.get("Metric Name") != "gpu__time_duration.sum": continue
    m = re.search(r'(\w+_kernel|work_item_costs)', r["Kernel Name"]); name = m.group(1) if m else r["Kernel Name"][:40]
    if name.startswith('interval_slash_scores'): name += '<sums>' if 'true' in r["Kernel Name"] else '<stats>'
    tot[name] = tot.get(name, 0.0) + float(r["Metric Value"].replace(',', '')) / 1e3; cnt[name] += 1
for k, v in tot.items(): print(f"| {k} | {cnt[k]} | {v:.1f} us | {v / cnt[k]:.1f} us |")
print(f"| all | {sum(cnt.values())} | {sum(tot.values()):.1f} us | |")
PY
  snap
done
for round in 1 2; do for s in sacc_main sacc; do echo "-- $s round $round"; timeout 60 $B/$s -q bench -m $QWEN --text $TEXT --ctx 16000,32000 --attention dense,sparse -r 5 2>&1 | grep -E '^\| *[0-9]+ \| 0'; done; done 2>&1 | tee $R/qwen_ab.txt; snap
python3 -c "import gzip,sys; sys.stdout.write(gzip.open('$TEXT','rt',errors='ignore').read()[:112000])" > /tmp/prompt.txt
for s in sacc_main sacc; do timeout 40 $B/$s -q generate -m $QWEN -f /tmp/prompt.txt -n 32 --attention sparse > $R/gen_$s.txt 2>&1; echo "gen $s rc=$?"; done
diff <(grep -v '^prompt ' $R/gen_sacc_main.txt) <(grep -v '^prompt ' $R/gen_sacc.txt) > /dev/null && echo "greedy continuations identical (timing line aside)" || echo "greedy continuations differ"; snap
