#!/usr/bin/env bash
# Runs the whole test suite (ctest) and the format check. GPU tests (label `gpu`) skip where no GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${SACC_BUILD_DIR:-build}
[ -d "$BUILD_DIR" ] || { echo "test: no $BUILD_DIR; run scripts/setup.sh first" >&2; exit 1; }
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
scripts/check_format.sh
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 -j "$(nproc)" "$@"
