#!/usr/bin/env bash
# Every GPU test matching a filter under compute-sanitizer tools, one process per (tool, test), JOBS at a time on
# the one GPU. Made for the model-level tests, which are too slow under racecheck and initcheck to run as one
# process within a device call, and whose failures must be told apart per test (a shard that dies takes its
# other tests' results with it). Run on the GPU machine from the repo root:
#   scripts/gpu_sanitize_tests.sh TESTS_BINARY OUT_DIR [GTEST_FILTER]
# TOOLS (default "racecheck initcheck"), JOBS (default 12), TEST_TIMEOUT seconds per process (default 420),
# RETRY_ALONE (default 1: pairs that ended without a result run again one at a time).
# initcheck leaves the libraries' kernels out as scripts/gpu_check.sh does (initcheck does not register their
# TMA stores, and instrumenting them is what made whole runs time out); INITCHECK_EXCLUDE adds kernel-name
# substrings of ours to leave out (their own tests are then the check). OUT_DIR receives one log per process
# and summary.md: tool, test, exit code, gtest result, the tool's error count and the kernels it names.
set -uo pipefail
TESTS=$1
OUT_DIR=$2
FILTER=${3:-*}
TOOLS=${TOOLS:-racecheck initcheck}
mkdir -p "$OUT_DIR"

# Full test names (Suite.Test, Prefix/Suite.Test/Param) from gtest's listing.
mapfile -t names < <("$TESTS" --gtest_list_tests --gtest_filter="$FILTER" | awk '
  /^Running main/ { next }
  /^[^ ]/ { suite = $1; next }
  /^  / { print suite $1 }')
echo "${#names[@]} tests x tools: $TOOLS; $(nproc) cores; jobs ${JOBS:-12}"

excludes=()
for name in nvjet xmma cutlass gemm gemv splitKreduce cudnn ${INITCHECK_EXCLUDE:-}; do
  excludes+=(--kernel-name-exclude "kns=$name")
done

one() {  # tool test: its log in OUT_DIR/<tool>__<test with / as _>.log, one summary row appended
  local tool=$1 test=$2 log rc result errors kernels flags=()
  log="$OUT_DIR/${tool}__${test//\//_}.log"
  [ "$tool" = initcheck ] && flags=("${excludes[@]}")
  timeout "${TEST_TIMEOUT:-420}" stdbuf -oL -eL compute-sanitizer --tool "$tool" "${flags[@]}" --print-limit 20 \
    --error-exitcode 7 "$TESTS" --gtest_filter="$test" >"$log" 2>&1
  rc=$?
  if grep -q '^\[  PASSED  \] 1 test' "$log"; then result=passed
  elif grep -q '^\[  FAILED  \]' "$log"; then result=failed
  elif grep -q '^\[  SKIPPED \]' "$log"; then result=skipped
  elif [ $rc = 124 ]; then result="out of time"
  else result="no result"; fi
  errors=$(grep -oE 'SUMMARY: [0-9]+ (errors?|hazards? displayed)' "$log" | grep -oE '[0-9]+' | head -1)
  kernels=$(grep -oE '(Device Frame: |Race reported between [A-Za-z]+ access at )[^(+ ]+' "$log" |
    sed -E 's/.*(Frame: |access at )//; s/.*:://' | sort -u | head -4 | paste -sd ' ' -)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$tool" "$test" "$rc" "$result" "${errors:--}" "${kernels:--}" \
    >>"$OUT_DIR/rows.txt"
}
export -f one
export TESTS OUT_DIR TEST_TIMEOUT
export EXCLUDES_FLAT="${excludes[*]}"

rm -f "$OUT_DIR/rows.txt"
start=$(date +%s)
for tool in $TOOLS; do
  for test in "${names[@]}"; do printf '%s %s\n' "$tool" "$test"; done
done | xargs -P "${JOBS:-12}" -L 1 bash -c 'excludes=($EXCLUDES_FLAT); one "$0" "$1"'

# Sanitizer processes sharing the GPU sometimes end with exit 9 and no result, more often the more of them run
# (gpu_sanitizer_h200.md); RETRY_ALONE=1 (the default) runs those pairs again one at a time, replacing the row.
if [ "${RETRY_ALONE:-1}" = 1 ]; then
  mapfile -t again < <(awk -F'|' '$5 ~ /no result/ { gsub(/ /, "", $2); gsub(/ /, "", $3); print $2, $3 }' \
    "$OUT_DIR/rows.txt")
  if [ "${#again[@]}" -gt 0 ]; then
    echo "${#again[@]} without a result: again, one at a time"
    grep -v '| no result |' "$OUT_DIR/rows.txt" >"$OUT_DIR/rows.tmp"
    mv "$OUT_DIR/rows.tmp" "$OUT_DIR/rows.txt"
    for pair in "${again[@]}"; do
      read -r tool test <<<"$pair"
      one "$tool" "$test"
    done
  fi
fi

{
  echo "| tool | test | exit | result | errors | kernels named |"
  echo "| --- | --- | --- | --- | --- | --- |"
  sort "$OUT_DIR/rows.txt"
  echo
  echo "$(wc -l <"$OUT_DIR/rows.txt") processes in $(($(date +%s) - start)) s, JOBS=${JOBS:-12}"
} >"$OUT_DIR/summary.md"
cat "$OUT_DIR/summary.md"
