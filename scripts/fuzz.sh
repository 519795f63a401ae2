#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang, CPU only) and runs each for SECONDS on its corpus, JOBS harnesses
# at a time; writes one row per harness (executions, seconds, crashes, commit, date, machine) to the results file.
#   scripts/fuzz.sh [SECONDS] [--jobs N] [--results FILE] [--bin DIR] [--only NAME]
#     SECONDS   per harness (default 30)
#     --jobs    harnesses run in parallel (default: nproc)
#     --results the table to write (default bench/results/fuzz_counts.md; CI's smoke run writes into the build)
#     --bin     run prebuilt harnesses from DIR instead of building (a machine without clang: copy
#               build-fuzz/fuzz/fuzz_* and fuzz/corpus there; the binaries need only libc, libstdc++, libm)
#     --only    run one harness (e.g. fuzz_gguf)
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
while (($#)); do
  case "$1" in
    --jobs) JOBS=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
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
[ -n "$ONLY" ] && harnesses=("$ONLY")
((${#harnesses[@]})) || { echo "fuzz: no harnesses in $BIN" >&2; exit 1; }

# One harness: its own corpus and artifact folders, a log, and "name executions seconds status" on stdout.
run_one() {
  local name=$1 seeds=fuzz/corpus/${1#fuzz_}
  rm -rf "$WORK/artifacts/$name"
  mkdir -p "$WORK/corpus/$name" "$WORK/artifacts/$name"
  local start rc=0
  start=$(date +%s)
  "$BIN/$name" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$name/" "$WORK/corpus/$name" "$seeds" \
    > "$WORK/logs/$name.log" 2>&1 || rc=$?
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/logs/$name.log" | grep -o '[0-9]*$' | tail -1)
  echo "$name ${runs:-0} $(($(date +%s) - start)) $rc"
}
export -f run_one
export WORK BIN SECONDS_PER

echo "fuzz: ${#harnesses[@]} harnesses, ${SECONDS_PER} s each, $JOBS at a time"
rows=$(printf '%s\n' "${harnesses[@]}" | xargs -P "$JOBS" -I{} bash -c 'run_one {}' | sort)

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
machine="$(uname -n), $(nproc) cores"
mkdir -p "$(dirname "$RESULTS")"
{
  echo "# Fuzzing: executions per harness"
  echo
  echo "\`scripts/fuzz.sh $SECONDS_PER --jobs $JOBS\` on $machine, commit $commit, $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "Crashes: 0 means no crash, leak, timeout or sanitizer report (ASan + UBSan + libFuzzer's leak check)."
  echo
  echo "| harness | executions | seconds | exec/s | crashes | commit | date | machine |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  while read -r name runs secs rc; do
    crashes=$(find "$WORK/artifacts/$name" -type f | wc -l)
    [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="exit $rc"
    echo "| $name | $runs | $secs | $((runs / (secs > 0 ? secs : 1))) | $crashes | $commit | $(date -u +%F) | $machine |"
  done <<< "$rows"
} > "$RESULTS"
cat "$RESULTS"
failed=$(awk '$4 != 0 {print $1}' <<< "$rows" | tr "\n" " ")
[ -z "$failed" ] || { echo "fuzz: FAILED: $failed (logs in $WORK/logs, inputs in $WORK/artifacts)" >&2; exit 1; }
