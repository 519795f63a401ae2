#!/usr/bin/env bash
# Runs the whole test suite (ctest) and the format check, then the hardening checks (issue 15): the CPU suite
# under ASan + UBSan with warnings as errors (scripts/sanitize.sh, build-asan/) and a fuzz smoke run of every
# harness on its committed corpus (scripts/fuzz.sh, build-fuzz/), and clang-tidy (.clang-tidy) over the
# translation units that read outside input (scripts/tidy.sh on build-asan's compile database).
# GPU tests (label `gpu`) skip where no GPU is visible. SACC_TEST_HARDENING=0 skips the hardening checks.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SACC_BUILD_DIR:-build}
[ -d "$BUILD_DIR" ] || { echo "test: no $BUILD_DIR; run scripts/setup.sh first" >&2; exit 1; }
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
scripts/check_format.sh
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 -j "$(nproc)" "$@"
if [ "${SACC_TEST_HARDENING:-1}" != 0 ]; then
  step() {
    local start=$SECONDS
    "$@"
    echo "test: $1 took $((SECONDS - start)) s"
  }
  step scripts/sanitize.sh
  step scripts/tidy.sh build-asan
  step scripts/fuzz.sh 10 --jobs "$(nproc)" --results build-fuzz/fuzz_smoke.md
fi
