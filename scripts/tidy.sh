#!/usr/bin/env bash
# clang-tidy (.clang-tidy) over the translation units that read outside input — src/core, src/model,
# src/attention (CPU parts), tools/sacc/openai_protocol.cpp and fuzz/ — the parsers the fuzzers cover. The
# kernels, runtime and CLI are left out to keep CI's 2 cores under ~5 minutes; pass --all for every CPU TU.
#   scripts/tidy.sh [BUILD_DIR] [--all]     BUILD_DIR: any build with compile_commands.json (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan
ALL=0
for arg in "$@"; do
  case "$arg" in
    --all) ALL=1 ;;
    *) BUILD_DIR=$arg ;;
  esac
done
[ -f "$BUILD_DIR/compile_commands.json" ] || { echo "tidy: no $BUILD_DIR/compile_commands.json" >&2; exit 1; }
if ((ALL)); then
  mapfile -t files < <(git ls-files 'src/*.cpp' 'tools/*.cpp' 'fuzz/*.cpp' | grep -v '/cuda/')
else
  mapfile -t files < <(git ls-files 'src/core/*.cpp' 'src/model/*.cpp' 'src/attention/*.cpp' \
    'src/attention/cpu/*.cpp' 'tools/sacc/openai_protocol.cpp' | grep -v '/cuda/')
fi
# Only files the build compiled (fuzz/ is in a fuzz build's database, not in the sanitizer build's).
mapfile -t files < <(for f in "${files[@]}"; do grep -q "\"file\": \".*/$f\"" "$BUILD_DIR/compile_commands.json" && echo "$f"; done)
echo "tidy: ${#files[@]} files"
printf '%s\n' "${files[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$BUILD_DIR" --quiet 2>&1 \
  | grep -v '^[0-9]* warnings generated\.$' | grep -v '^Suppressed [0-9]* warnings' \
  | grep -v "^Use -header-filter" | tee "$BUILD_DIR/tidy.log" || true
! grep -q 'error:\|warning:' "$BUILD_DIR/tidy.log" || { echo "tidy: findings above" >&2; exit 1; }
echo "tidy: clean"
