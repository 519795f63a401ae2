#!/usr/bin/env bash
# Moves files larger than the GPU machine's 64 MiB carry (the real GGUF models, the built binaries) to it over
# back-to-back device calls, and re-assembles them there (BENCH.md, "Real models on the GPU machine").
#
#   here:   scripts/device_stage.sh prepare [FILE...]
#             packs build/tools/sacc (+ the libraries the GPU image lacks, xz), the files named (default: the
#             two models in .models/, Debian's Jargon File, the `gguf` wheel in .whl/ when present) into parts of
#             at most 57 MB, grouped into call folders .carry/call01, call02, ... (each under the carry limit),
#             each with the manifest (names, sizes, sha256). Prints the calls to make. SACC_STAGE_EXTRA names
#             more binaries to pack beside sacc (e.g. build/tests/sacc_gpu_tests).
#   device: every call carries its folder and starts with
#             bash scripts/device_stage.sh receive .carry/callNN
#           which copies the parts to /root/sacc-stage (kept between calls while the machine stays warm, 30 s)
#           and, once every part is there, concatenates them, checks each file's sha256 and unpacks:
#             /root/sacc/bin/sacc (+ libraries)   /root/sacc/models/*.gguf   /root/sacc/data/*
#           `source scripts/device_stage.sh` then sets PATH, LD_LIBRARY_PATH, SACC_MODELS_DIR,
#           SACC_DATA_DIR and SACC_CUDNN_PATH. A call after the last part finds everything in place and only re-checks.
# A machine that went cold (more than 30 s idle) starts bare: begin again with call01.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then  # sourced: only the environment
  export PATH="/root/sacc/bin:$PATH" LD_LIBRARY_PATH="/root/sacc/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export SACC_MODELS_DIR=/root/sacc/models SACC_DATA_DIR=/root/sacc/data
  if [ -z "${SACC_CUDNN_PATH:-}" ]; then
    SACC_CUDNN_PATH=$(python3 -c "import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])" 2>/dev/null)/lib &&
      export SACC_CUDNN_PATH
  fi
  return 0
fi
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAGE=/root/sacc-stage
DEST=/root/sacc
PART_BYTES=57000000   # one part; a call folder holds parts summing to at most this much
CARRY=$ROOT/.carry

prepare() {
  set -e
  local build=${SACC_BUILD_DIR:-$ROOT/build}
  [ -x "$build/tools/sacc" ] || { echo "device_stage: no $build/tools/sacc; build first" >&2; exit 1; }
  local files=("$@")
  if [ ${#files[@]} -eq 0 ]; then
    files=("$ROOT"/.models/*.gguf /usr/share/doc/jargon-text/jargon.txt.gz)
    for wheel in "$ROOT"/.whl/gguf-*.whl; do [ -f "$wheel" ] && files+=("$wheel"); done
  fi
  rm -rf "$CARRY" && mkdir -p "$CARRY/pack/bin"
  # shellcheck source=carry_libs.sh
  source "$ROOT/scripts/carry_libs.sh"
  # shellcheck disable=SC2086
  carry_binaries "$CARRY/pack/bin" "$build/tools/sacc" ${SACC_STAGE_EXTRA:-}
  echo "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src tools || echo '+local changes')" \
    >"$CARRY/pack/bin/COMMIT"
  tar -C "$CARRY/pack" -cJf "$CARRY/pack/bin.tar.xz" bin
  files=("$CARRY/pack/bin.tar.xz" "${files[@]}")
  # Split every file into parts; then fill call folders in order, a new folder when the next part would not fit.
  local manifest=$CARRY/pack/MANIFEST call=1 used=0 file name size
  : >"$manifest"
  mkdir -p "$CARRY/pack/parts"
  for file in "${files[@]}"; do
    [ -f "$file" ] || { echo "device_stage: no such file $file" >&2; exit 1; }
    name=$(basename "$file")
    size=$(stat -c %s "$file")
    split -b "$PART_BYTES" -d -a 3 "$file" "$CARRY/pack/parts/$name.part"
    echo "$name $size $(sha256sum "$file" | cut -d' ' -f1) $(ls "$CARRY/pack/parts/$name".part* | wc -l)" >>"$manifest"
  done
  for part in "$CARRY"/pack/parts/*; do
    size=$(stat -c %s "$part")
    if [ $((used + size)) -gt "$PART_BYTES" ] && [ "$used" -gt 0 ]; then call=$((call + 1)); used=0; fi
    mkdir -p "$CARRY/$(printf 'call%02d' "$call")"
    mv "$part" "$CARRY/$(printf 'call%02d' "$call")/"
    used=$((used + size))
  done
  for dir in "$CARRY"/call*; do cp "$manifest" "$dir/MANIFEST"; done
  rm -rf "$CARRY/pack"
  echo "device_stage: $(wc -l <"$CARRY/call01/MANIFEST") files in $call calls; make them back to back:"
  for dir in "$CARRY"/call*; do
    echo "  run carry=[\".carry/$(basename "$dir")\"]  command: bash scripts/device_stage.sh receive .carry/$(basename "$dir") [&& ...]"
  done
}

# Concatenates and checks every file of the manifest whose parts are all staged; 0 when all are in place.
assemble() {
  local manifest=$1 missing=0 name size sha parts
  mkdir -p "$DEST/bin" "$DEST/models" "$DEST/data"
  while read -r name size sha parts; do
    local target
    case $name in
      *.gguf) target=$DEST/models/$name ;;
      bin.tar.xz) target=$DEST/bin.tar.xz ;;
      *) target=$DEST/data/$name ;;
    esac
    if [ -f "$target" ] && [ "$(stat -c %s "$target")" = "$size" ] && [ -f "$target.ok" ]; then continue; fi
    if [ "$(ls "$STAGE/$name".part* 2>/dev/null | wc -l)" != "$parts" ]; then missing=$((missing + 1)); continue; fi
    cat "$STAGE/$name".part* >"$target"
    if [ "$(sha256sum "$target" | cut -d' ' -f1)" != "$sha" ]; then
      echo "device_stage: $name: sha256 mismatch after re-assembly; prepare and send again" >&2
      rm -f "$target"
      return 2
    fi
    touch "$target.ok"
    rm -f "$STAGE/$name".part*
    [ "$name" = bin.tar.xz ] && tar -C "$DEST" -xJf "$target"
    echo "device_stage: $name ($size bytes) assembled, sha256 ok"
  done <"$manifest"
  [ "$missing" -eq 0 ] || { echo "device_stage: $missing file(s) still waiting for parts"; return 1; }
  return 0
}

receive() {
  local dir=$1
  [ -f "$dir/MANIFEST" ] || { echo "device_stage: $dir holds no MANIFEST (was it carried?)" >&2; return 2; }
  mkdir -p "$STAGE"
  cp "$dir"/*.part* "$STAGE/" 2>/dev/null || true
  cp "$dir/MANIFEST" "$STAGE/MANIFEST"
  assemble "$STAGE/MANIFEST"
  local status=$?
  [ "$status" -eq 0 ] && echo "device_stage: all files in place under $DEST"
  return "$status"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  receive) [ $# -eq 2 ] || { echo "usage: device_stage.sh receive .carry/callNN" >&2; exit 2; }; receive "$2" ;;
  *) echo "usage: device_stage.sh prepare [FILE...] | receive DIR   (source it for the environment)" >&2; exit 2 ;;
esac
