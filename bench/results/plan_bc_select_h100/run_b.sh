#!/usr/bin/env bash
# Session 16, call B: Qwen 16000/32000 TTFT, dense and the default sparse, main against the two variants (alternating).
source scripts/device_stage.sh
export PATH=/usr/local/cuda/bin:$PATH SACC_CACHE_DIR=/root/sacc-cache
B=/root/sacc/bin
R=/root/b16; rm -rf $R; mkdir -p $R
snap() { tar -C /root -czf $OUT/b16.tgz b16; }
M=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
T=$SACC_DATA_DIR/jargon.txt.gz
for round in 1 2; do
  for v in "" _bc _is; do
    SECONDS=0
    timeout 120 $B/sacc$v -q bench -m $M --text $T --ctx 16000,32000 --attention dense,sparse -r 5 > $R/ab${v:-_base}_r$round.md 2>&1
    echo "sacc${v:-_base} round $round rc=$? ${SECONDS}s: $(grep -E '^\| (16000|32000) \|' $R/ab${v:-_base}_r$round.md | tr '\n' ' ')"
    snap
  done
done
