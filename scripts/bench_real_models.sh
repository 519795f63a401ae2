#!/usr/bin/env bash
# The real models on the GPU machine (issue 12): TTFT against our dense and HF transformers on the same GGUFs,
# `auto` calibrated for this GPU, and accuracy of the default sparse setting against dense (RULER-style
# tasks, needle in a haystack, perplexity at 32K). Runs on the device after scripts/device_stage.sh has
# placed the binaries, the models, the Jargon File and the `gguf` wheel under /root/sacc:
#
#   device: bash scripts/device_stage.sh receive .carry/callNN && bash scripts/bench_real_models.sh STAGE...
#
# Stages (each writes into $OUT, default bench/results/real):
#   calibrate  `sacc calibrate` for the default setting on both models (cache in $OUT/cache, kept for later
#              stages of the same machine in /root/sacc-cache)
#   ttft       HF transformers (sdpa, the GGUF dequantised to bf16) and `sacc bench` dense/sparse/auto on
#              prose prompts, one table per model; then `sacc generate -f` a 32000-token prompt, no flags
#   ruler      `sacc eval ruler` dense vs the default at 8000/16000/32000 tokens (Qwen)
#   niah       `sacc eval niah` dense vs the default at 8000/16000/30000 tokens (Qwen)
#   ppl        `sacc eval ppl` at 32768 tokens, the last 4096 scored (Qwen)
#   density    real Q/K/V of every Qwen layer at 32768 tokens (a dense prefill on the GPU), then per layer the
#              default's index density, plan (estimation + index) and attention time on the GPU; and the
#              default's attention recall per head at 32768 tokens (Q/K/V captured on the GPU, CPU oracle)
#   profile    kernel time by stage (plan, attention, linear layers, ...) of one 32000-token prefill, dense and
#              each SACC_REAL_SETTINGS, Qwen (ncu, bench/ncu_breakdown.py)
#   kernels    ncu sections (speed of light, occupancy, warp stalls) of the plan's and the elementwise kernels,
#              their first launches in a 32000-token prefill of the default, Qwen
#   variants   one knob of the default varied at a time (bench/head_config_variants.py: more local diagonals,
#              more estimating queries, leading dense layers; plus $SACC_VARIANT_EXTRA settings): perplexity at
#              32768 (last 4096) and TTFT at 32000 of each, Qwen
#   serve      `sacc serve` + bench/serve_load.py: a repeated ~32000-token document with new questions (prefix KV
#              reuse), dense and the default attention, Qwen
#   frontier   perplexity at 32768 (last 4096) and TTFT at 32000 of dense and each SACC_REAL_SETTINGS, Qwen
#   ab         builds of sacc side by side (scripts/build_variant.sh makes them, SACC_STAGE_EXTRA carries them):
#              every binary named in $SACC_AB_BINS (default: all /root/sacc/bin/sacc*), $SACC_AB_ROUNDS rounds
#              (default 2) in alternation, `sacc bench` dense and the default sparse at 16000 and 32000, Qwen
#   load       `sacc serve` under bench/serve_load.py: concurrency 1/8/32 (8K-token prompts, 128 tokens each;
#              --max-batch 32 --max-queue 64, no prefix cache), dense and sparse servers, then running streams' inter-token latency while a
#              32K-token prompt is prefilled (default server), Qwen
# Environment: SACC_REAL_SETTINGS (';'-separated sparse settings for the accuracy stages; default: the
# built-in default), SACC_RULER_LENGTHS (default 8000,16000,32000), SACC_RULER_SAMPLES (default 25),
# SACC_REAL_REPEATS (default 3), SACC_REAL_MODELS (the ttft stage's models, default "qwen smollm2").
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=device_stage.sh
source scripts/device_stage.sh
OUT=${OUT:-bench/results/real}
mkdir -p "$OUT" /root/sacc-cache
export SACC_CACHE_DIR=/root/sacc-cache
QWEN=$SACC_MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
SMOL=$SACC_MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf
TEXT=$SACC_DATA_DIR/jargon.txt.gz
DEFAULT=$(sacc version | sed -n 's/^default sparse setting: //p')
SETTINGS=${SACC_REAL_SETTINGS:-$DEFAULT}
REPEATS=${SACC_REAL_REPEATS:-3}
status=0
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "sacc commit $(cat /root/sacc/bin/COMMIT); date $(date -u +%FT%TZ); default setting '$DEFAULT'"
} | tee -a "$OUT/gpu.txt"

# Perplexity at 32768 (last 4096) and TTFT at 32000 of dense and each ';'-separated setting (a pattern, or
# config:FILE for a head config), Qwen; files $OUT/NAME_ppl.{json,txt} and $OUT/NAME_ttft.txt.
ppl_and_ttft() {
  local name=$1 settings=$2 setting
  sacc -q eval ppl -m "$QWEN" --text "$TEXT" --length 32768 --last 4096 --sparse "$settings" \
    --out "$OUT/${name}_ppl.json" 2>&1 | tee "$OUT/${name}_ppl.txt"
  sacc -q bench -m "$QWEN" --text "$TEXT" --ctx 32000 --attention dense -r "$REPEATS" 2>&1 | tee "$OUT/${name}_ttft.txt"
  IFS=';' read -ra list <<<"$settings"
  for setting in "${list[@]}"; do
    echo "-- $setting"
    if [[ $setting == config:* ]]; then
      sacc -q bench -m "$QWEN" --text "$TEXT" --ctx 32000 --attention sparse -r "$REPEATS" --pattern-config "${setting#config:}"
    else
      sacc -q bench -m "$QWEN" --text "$TEXT" --ctx 32000 --attention sparse -r "$REPEATS" --pattern "$setting"
    fi
  done 2>&1 | tee -a "$OUT/${name}_ttft.txt"
}

fetch_url() { python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" "$1"; }

run_stage() {
  case $1 in
    calibrate)
      sacc -q calibrate -m "$QWEN" --text "$TEXT" -r "$REPEATS" 2>&1 | tee "$OUT/calibrate_qwen.log"
      sacc -q calibrate -m "$SMOL" --text "$TEXT" -r "$REPEATS" 2>&1 | tee "$OUT/calibrate_smollm2.log"
      cp "$SACC_CACHE_DIR/calibration.json" "$OUT/calibration.json" ;;
    ttft)
      python3 -m pip install -q --no-index --no-deps --target /tmp/site "$SACC_DATA_DIR"/gguf-*.whl &&
        export PYTHONPATH=/tmp/site
      local name model ctx
      for name in ${SACC_REAL_MODELS:-qwen smollm2}; do
        if [ $name = qwen ]; then model=$QWEN ctx=1000,2000,4000,8000,16000,32000; else model=$SMOL ctx=1000,2000,4000,8000; fi
        PYTHONUNBUFFERED=1 timeout 300 python3 bench/hf_baseline.py --gguf "$model" --ctx "$ctx" --attn sdpa \
          -r "$REPEATS" -o "$OUT/hf_$name.json" 2>&1 | grep -v Warning | tee "$OUT/hf_$name.log"
        sacc -q bench -m "$model" --text "$TEXT" --ctx "$ctx" --attention dense,sparse,auto -r "$REPEATS" \
          --compare "$OUT/hf_$name.json" --out "$OUT/ttft_$name.md" --json "$OUT/ttft_$name.json" 2>&1 |
          tee "$OUT/bench_$name.log"
      done
      # A prose prompt of at most 32000 tokens: cut by characters, measured by the tokenizer, cut again.
      python3 -c "import gzip,sys; sys.stdout.write(gzip.open('$TEXT','rt',errors='ignore').read()[:400000])" >/tmp/prose.txt
      local len=99999 chars=130000
      while [ "$len" -gt 32000 ]; do
        head -c "$chars" /tmp/prose.txt >/tmp/prompt.txt
        len=$(sacc -q generate -m "$QWEN" -f /tmp/prompt.txt -n 1 --attention dense --json --max-context 400000 2>/dev/null |
              python3 -c "import json,sys; print(json.load(sys.stdin)['prompt_tokens'])")
        chars=$((chars * 31900 / len))
      done
      echo "generate: a $len-token prose prompt, three runs each" | tee "$OUT/generate_qwen.log"
      for flags in "" "--attention dense"; do
        for _ in 1 2 3; do
          # shellcheck disable=SC2086
          sacc generate -m "$QWEN" -f /tmp/prompt.txt -n 16 $flags 2>&1 | tail -n 2 | tee -a "$OUT/generate_qwen.log"
        done
      done ;;
    ruler)
      sacc -q eval ruler -m "$QWEN" --text "$TEXT" --lengths "${SACC_RULER_LENGTHS:-8000,16000,32000}" \
        --samples "${SACC_RULER_SAMPLES:-25}" --sparse "$SETTINGS" --out "$OUT/ruler" 2>"$OUT/ruler.log" |
        tee "$OUT/ruler.txt" ;;
    niah)
      sacc -q eval niah -m "$QWEN" --text "$TEXT" --lengths 8000,16000,30000 --sparse "$SETTINGS" \
        --out "$OUT/niah" 2>"$OUT/niah.log" | tee "$OUT/niah.txt" ;;
    ppl)
      sacc -q eval ppl -m "$QWEN" --text "$TEXT" --length 32768 --last 4096 --sparse "$SETTINGS" \
        --out "$OUT/ppl.json" 2>&1 | tee "$OUT/ppl.txt" ;;
    density)
      local layer all_layers
      all_layers=$(seq -s, 0 23)
      sacc -q eval recall -m "$QWEN" --text "$TEXT" --length 32768 --layers "$all_layers" --sparse "" \
        --dump-qkv /tmp/qkv32k >/dev/null 2>&1
      for layer in ${all_layers//,/ }; do
        echo "layer $layer:"
        sacc -q attention --in "/tmp/qkv32k/layer_$layer.safetensors" --pattern "$DEFAULT" --device cuda --out /tmp/o.safetensors 2>&1
      done | tee "$OUT/density_32k.txt"
      timeout 400 sacc -q eval recall -m "$QWEN" --text "$TEXT" --length 32768 --layers 0,11,23 --sparse "$DEFAULT" \
        --device cuda --out "$OUT/recall_32k.json" 2>&1 | tee "$OUT/recall_32k.txt" ;;
    profile)
      local setting
      IFS=';' read -ra list <<<"dense;$SETTINGS"
      for setting in "${list[@]}"; do
        local args=(--attention sparse --pattern "$setting") name=${setting//[^a-z0-9.]/_}
        [ "$setting" = dense ] && args=(--attention dense)
        ncu --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
          sacc -q bench -m "$QWEN" --text "$TEXT" --ctx 32000 -r 1 --warmup 0 "${args[@]}" >"$OUT/ncu_$name.csv" 2>&1
        python3 bench/ncu_breakdown.py "$OUT/ncu_$name.csv" --label "$setting at 32000 tokens"
      done 2>&1 | tee "$OUT/profile.md" ;;
    kernels)
      local kernel
      for kernel in block_cluster_select pool_kernel interval_slash_select interval_slash_scores build_index \
        swiglu rms_norm bias_rope; do
        ncu --clock-control none -k "regex:$kernel" --launch-count 1 \
          --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
          sacc -q bench -m "$QWEN" --text "$TEXT" --ctx 32000 -r 1 --warmup 0 --attention sparse \
          >"$OUT/ncu_kernel_$kernel.txt" 2>&1
        grep -E "^  [a-zA-Z_:<>0-9, ]+\(|Duration|Achieved Occupancy|Memory Throughput|Compute \(SM\)" \
          "$OUT/ncu_kernel_$kernel.txt"
      done ;;
    variants)
      local variants
      variants=$(python3 bench/head_config_variants.py --layers 24 --heads 14 --pattern "$DEFAULT" --out "$OUT/variants")
      ppl_and_ttft variants "$DEFAULT;${variants}${SACC_VARIANT_EXTRA:+;$SACC_VARIANT_EXTRA}" ;;
    frontier)
      ppl_and_ttft frontier "$SETTINGS" ;;
    serve)
      # The repeated-document scenario of bench/serve_load.py at 32768 tokens: dense prefills (cached by
      # default), then the default attention with sparse prefills cached too (--prefix-cache-sparse).
      local flags port=18080
      for flags in "--attention dense" "--prefix-cache-sparse"; do
        # -v: the log keeps each cuBLASLt algorithm search and its time.
        # shellcheck disable=SC2086
        sacc -v serve -m "$QWEN" --port $port $flags >"$OUT/serve_$port.log" 2>&1 &
        local pid=$!
        for _ in $(seq 60); do fetch_url "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 1; done
        echo "-- sacc serve $flags"
        python3 bench/serve_load.py --url "http://127.0.0.1:$port" --doc-tokens 32000 --questions 4 \
          --json "$OUT/serve_prefix_$port.json"
        fetch_url "http://127.0.0.1:$port/metrics" | grep -E "^sacc_prefix_cache"
        kill -TERM $pid; wait $pid
        port=$((port + 1))
      done 2>&1 | tee "$OUT/serve.txt" ;;
    load)
      local port=18090 flags attention
      for flags in "--attention dense --max-batch 32 --max-queue 64 --prefix-cache 0" \
        "--attention sparse --max-batch 32 --max-queue 64 --prefix-cache 0" ""; do
        # shellcheck disable=SC2086
        sacc serve -m "$QWEN" --port $port $flags >"$OUT/load_$port.log" 2>&1 &
        local pid=$!
        for _ in $(seq 60); do fetch_url "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 1; done
        echo "-- sacc serve $flags"
        if [ -n "$flags" ]; then
          attention=$(awk '{print $2}' <<<"$flags")
          python3 bench/serve_load.py --url "http://127.0.0.1:$port" --scenario concurrency --concurrency 1,8,32 \
            --prompt-tokens 8192 --max-tokens 128 --json "$OUT/load_concurrency_${attention}.json"
        else
          python3 bench/serve_load.py --url "http://127.0.0.1:$port" --scenario prefill-interference --streams 4 \
            --long-tokens 32768 --json "$OUT/load_interference.json"
        fi
        fetch_url "http://127.0.0.1:$port/metrics" | grep -E "^sacc_(decode|prefill_chunks|active)"
        kill -TERM $pid; wait $pid
        port=$((port + 1))
      done 2>&1 | tee "$OUT/load.txt" ;;
    ab)
      local bins=${SACC_AB_BINS:-} round bin
      if [ -z "$bins" ]; then
        for bin in /root/sacc/bin/sacc*; do
          case $bin in *.so* | *.COMMIT | *_tests) ;; *) bins+="${bin##*/} " ;; esac
        done
      fi
      for round in $(seq "${SACC_AB_ROUNDS:-2}"); do
        for bin in $bins; do
          echo "-- $bin (round $round, $(cat "/root/sacc/bin/$bin.COMMIT" 2>/dev/null || cat /root/sacc/bin/COMMIT))"
          "/root/sacc/bin/$bin" -q bench -m "$QWEN" --text "$TEXT" --ctx 16000,32000 --attention dense,sparse \
            -r 5 2>&1 | grep -E '^\| ctx|^\| *[0-9]+ \| 0'
        done
      done 2>&1 | tee "$OUT/ab.txt" ;;
    *) echo "bench_real_models: unknown stage $1" >&2; return 2 ;;
  esac
}

for stage in "$@"; do
  echo "== $stage"
  run_stage "$stage" || status=1
done
exit $status
