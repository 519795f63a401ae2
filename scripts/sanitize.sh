#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer + UndefinedBehaviorSanitizer, with warnings as errors: a CPU-only
# build (SACC_CUDA=OFF) in its own folder, then every ctest test labelled `cpu` except the OpenAI-client test
# (it installs a Python package; the plain build runs it). Any sanitizer report fails the test that hit it.
#   scripts/sanitize.sh [ctest args...]     build folder: $SACC_ASAN_BUILD_DIR (default build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SACC_ASAN_BUILD_DIR:-build-asan}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  # -O1: sanitized code at -O3 builds much slower and reports the same; asserts stay on (no NDEBUG).
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 \
    -DSACC_CUDA=OFF -DSACC_WERROR=ON -DSACC_SANITIZE=address,undefined > "$BUILD_DIR.cmake.log" 2>&1 \
    || { cat "$BUILD_DIR.cmake.log"; exit 1; }
fi
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The four whole-model evaluations (NIAH grid, RULER, calibrate, perplexity: 25-75 s each in the plain build,
# several minutes each sanitized), the prefix-cache server tests (multi-thousand-token prefills of the real
# model: over 10 minutes each sanitized) and the pip-installing client test run in the plain suite only; every
# other CPU test, the CLI's included, runs here.
SLOW='^(serve_openai_client|RealModelEval\..*|RulerCli\.DenseAndSparseOnTheSamePrompts|CalibrateCli\.StoresTheMeasurementThatAutoThenUses|PrefixCacheServe\..*)$'
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 1800 -j "$(nproc)" -L cpu -E "$SLOW" "$@"
