#!/usr/bin/env bash
# Builds binaries of another commit beside this tree's, for an A/B in one device call (the `ab` stage of
# scripts/bench_real_models.sh, or by hand): the sources of REV are checked out over a clean tree, the targets
# built in build/, copied to OUTDIR with the suffix, and HEAD's sources restored (then rebuilt).
#
#   scripts/build_variant.sh REV SUFFIX OUTDIR [TARGET...]   (default targets: sacc)
#   e.g. scripts/build_variant.sh 2a02a10 _main /tmp/ab sacc flash_bench  ->  /tmp/ab/sacc_main, /tmp/ab/flash_bench_main
# then: SACC_STAGE_EXTRA="/tmp/ab/sacc_main" scripts/device_stage.sh prepare ...; each copy gets NAME.COMMIT.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n 2,9p "$0" >&2; exit 2; }
rev=$1 suffix=$2 outdir=$3
shift 3
targets=("${@:-sacc}")
paths=(src tools bench ":(exclude)bench/results")
[ -z "$(git status --porcelain -- "${paths[@]}")" ] ||
  { echo "build_variant: src/ tools/ bench/ have uncommitted or untracked files" >&2; exit 1; }
commit=$(git rev-parse --short "$rev")
mkdir -p "$outdir"
# Files REV has and HEAD lacks are removed again afterwards; files HEAD has and REV lacks are removed for the
# build and come back with the checkout of HEAD (every one of them is tracked: the tree was clean).
restore() {
  git reset -q HEAD -- "${paths[@]}"
  git checkout -q HEAD -- "${paths[@]}"
  git diff --name-only --diff-filter=A HEAD "$rev" -- "${paths[@]}" | xargs -r rm -f
}
trap restore EXIT
git checkout -q "$rev" -- "${paths[@]}"
git diff --name-only --diff-filter=D HEAD "$rev" -- "${paths[@]}" | xargs -r rm -f
cmake --build build -j"$(nproc)" --target "${targets[@]}" >/dev/null
for target in "${targets[@]}"; do
  binary=$(find build -type f -name "$target" -perm -u+x | head -n 1)
  [ -n "$binary" ] || { echo "build_variant: no binary for target $target" >&2; exit 1; }
  cp "$binary" "$outdir/$target$suffix"
  echo "$commit" >"$outdir/$target$suffix.COMMIT"
  echo "build_variant: $outdir/$target$suffix ($commit)"
done
restore
trap - EXIT
cmake --build build -j"$(nproc)" --target "${targets[@]}" >/dev/null
