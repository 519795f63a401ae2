#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang, CPU only) and runs each for SECONDS on its corpus, JOBS harnesses
# at a time; writes one row per harness (executions, seconds, crashes, commit, date, machine, command) to the
# results file, under a table of the totals per harness.
#   scripts/fuzz.sh [SECONDS] [--jobs N] [--results FILE] [--append] [--bin DIR] [--only NAME]
#     SECONDS   per harness (default 30)
#     --jobs    harnesses run in parallel (default: nproc)
#     --results the file to write (default bench/results/fuzz_counts.md; CI's smoke run writes into the build)
#     --append  keep the runs already in the results file and total them with this one (a campaign in
#               several runs; the corpus in build-fuzz/corpus carries over from run to run)
#     --bin     run prebuilt harnesses from DIR instead of building (a machine without clang: copy
#               build-fuzz/fuzz/fuzz_* and fuzz/corpus there; the binaries need only libc, libstdc++, libm)
#     --only    run these harnesses (e.g. fuzz_gguf or fuzz_gguf,fuzz_size)
# SACC_FUZZ_BUILD_DIR: the work folder (default build-fuzz); parallel lanes of one campaign each take their own.
# SACC_FUZZ_COMMIT: the commit the --bin harnesses were built from (a copy of the tree without git history).
# Each harness's growing corpus lives in build-fuzz/corpus/<name> (the committed seeds in fuzz/corpus/<name> are
# read, never written); crashing inputs go to build-fuzz/artifacts/<name>/ and a harness that finds one fails
# the script. Exit status: 0 when no harness crashed, leaked, hung or hit a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=30
JOBS=$(nproc)
RESULTS=bench/results/fuzz_counts.md
BIN=""
ONLY=""
APPEND=0
COMMAND="scripts/fuzz.sh $*"
while (($#)); do
  case "$1" in
    --jobs) JOBS=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --append) APPEND=1; shift ;;
    --bin) BIN=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    [0-9]*) SECONDS_PER=$1; shift ;;
    *) echo "fuzz: unknown argument $1" >&2; exit 2 ;;
  esac
done

WORK=${SACC_FUZZ_BUILD_DIR:-build-fuzz}
if [ -z "$BIN" ]; then
  command -v clang++ > /dev/null || { echo "fuzz: clang++ missing (scripts/setup.sh installs it)" >&2; exit 1; }
  if [ ! -f "$WORK/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ cmake -S . -B "$WORK" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSACC_CUDA=OFF \
      -DSACC_BUILD_TESTS=OFF -DSACC_FUZZ=ON > "$WORK.cmake.log" 2>&1 || { cat "$WORK.cmake.log"; exit 1; }
  fi
  cmake --build "$WORK" --target sacc_fuzzers --parallel "$JOBS"
  BIN=$WORK/fuzz
fi
mkdir -p "$WORK/corpus" "$WORK/artifacts" "$WORK/logs"

mapfile -t harnesses < <(find "$BIN" -maxdepth 1 -name 'fuzz_*' -type f -perm -u+x -printf '%f\n' | sort)
[ -n "$ONLY" ] && IFS=, read -ra harnesses <<< "$ONLY"
((${#harnesses[@]})) || { echo "fuzz: no harnesses in $BIN" >&2; exit 1; }

# Options per harness. -max_len: a little above the largest real input of its kind and its seeds. libFuzzer
# grows inputs towards the limit and a parse takes time in proportion (0.5 ms for the 3.8 KB MInference seed
# under the sanitizers), so a 64 KiB limit spent long runs on huge inputs that reach no code a realistic size
# does not. -dict: JSON tokens for the JSON parsers (fuzz/json.dict says why).
harness_options() {
  case $1 in
    fuzz_size) echo -max_len=64 ;;                          # "24GiB"
    fuzz_pattern) echo -max_len=256 ;;                      # "interval-slash:1000,6096@0.95+block-cluster:16"
    fuzz_chat_template) echo -max_len=4096 ;;               # a Jinja template and a few messages
    fuzz_gguf | fuzz_gguf_tokenizer) echo -max_len=6144 ;;  # seeds < 5 KB: small vocab, a tensor of each type
    fuzz_tokenizer_json) echo -max_len=6144 -dict=fuzz/json.dict ;;  # seeds < 4.3 KB: Llama-3's, cut
    *) echo -max_len=4096 -dict=fuzz/json.dict ;;  # config.json, head configs, request bodies, safetensors
  esac
}

# One harness: its own corpus and artifact folders, a log, and "name executions seconds status" on stdout.
run_one() {
  local name=$1 seeds=fuzz/corpus/${1#fuzz_}
  rm -rf "$WORK/artifacts/$name"
  mkdir -p "$WORK/corpus/$name" "$WORK/artifacts/$name"
  local start rc=0
  start=$(date +%s)
  # shellcheck disable=SC2046 # the options are words
  "$BIN/$name" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 $(harness_options "$name") \
    -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$name/" "$WORK/corpus/$name" "$seeds" \
    > "$WORK/logs/$name.log" 2>&1 || rc=$?
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/logs/$name.log" | grep -o '[0-9]*$' | tail -1)
  echo "$name ${runs:-0} $(($(date +%s) - start)) $rc"
}
export -f run_one harness_options
export WORK BIN SECONDS_PER

echo "fuzz: ${#harnesses[@]} harnesses, ${SECONDS_PER} s each, $JOBS at a time"
rows=$(printf '%s\n' "${harnesses[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}' | sort)

# The commit checked out (the harnesses' source unless --bin); +dirty when tracked files other than the
# results file differ from it.
commit=${SACC_FUZZ_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
[ -n "${SACC_FUZZ_COMMIT:-}" ] || ! git diff --name-only HEAD 2>/dev/null | grep -qvxF "$RESULTS" || commit+="+dirty"
machine="$(uname -n), $(nproc) cores"
today=$(date -u '+%Y-%m-%d %H:%M UTC')
run_rows=""
while read -r name runs secs rc; do
  crashes=$(find "$WORK/artifacts/$name" -type f | wc -l)
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="exit $rc"
  run_rows+="| $name | $runs | $secs | $((runs / (secs > 0 ? secs : 1))) | $crashes | $commit | $today |"
  run_rows+=" $machine | \`$COMMAND\` |"$'\n'
done <<< "$rows"
# Concurrent --append runs (lanes of one campaign, each with its own SACC_FUZZ_BUILD_DIR) take turns at the
# results file: the lock is on the file itself.
mkdir -p "$(dirname "$RESULTS")"
exec {lock}>> "$RESULTS"
flock "$lock"
# Earlier runs: the rows of the runs table already in the file, and its notes (a "## Notes" section, by hand).
notes=""
if ((APPEND)) && [ -f "$RESULTS" ]; then
  run_rows="$(sed -n '/^## Runs/,/^## Notes/p' "$RESULTS" | grep '^| fuzz_' || true)"$'\n'"$run_rows"
  notes=$(sed -n '/^## Notes/,$p' "$RESULTS")
fi
{
  echo "# Fuzzing: executions per harness"
  echo
  echo "Each row of Runs is one run of \`scripts/fuzz.sh\` (its command, the commit checked out, which built the"
  echo "harnesses unless --bin gave others, the machine); Totals sum them, each run going on from the corpus the"
  echo "previous ones grew. Crashes: 0 means no crash, leak, timeout or sanitizer report (ASan + UBSan +"
  echo "libFuzzer's leak check); \"exit N\" is a failure that left no input."
  echo
  echo "## Totals"
  echo
  echo "| harness | executions | seconds | exec/s | crashes | runs |"
  echo "| --- | --- | --- | --- | --- | --- |"
  # Crash cells that are not a count ("exit N") count as one failure.
  awk -F' [|] ' 'NF > 5 { h = substr($1, 3); n[h] += $2; s[h] += $3; c[h] += ($5 ~ /^[0-9]+$/) ? $5 : 1; r[h]++ }
    END { for (h in n) printf "| %s | %.0f | %.0f | %.0f | %d | %d |\n",
                              h, n[h], s[h], n[h] / (s[h] > 0 ? s[h] : 1), c[h], r[h] }' <<< "$run_rows" | sort
  echo
  echo "## Runs"
  echo
  echo "| harness | executions | seconds | exec/s | crashes | commit | date | machine | command |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s' "$run_rows" | grep '^| fuzz_'
  [ -z "$notes" ] || printf '\n%s\n' "$notes"
} > "$RESULTS"
cat "$RESULTS"
failed=$(awk '$4 != 0 {print $1}' <<< "$rows" | tr "\n" " ")
[ -z "$failed" ] || { echo "fuzz: FAILED: $failed (logs in $WORK/logs, inputs in $WORK/artifacts)" >&2; exit 1; }
