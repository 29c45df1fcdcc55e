#!/usr/bin/env bash
# Builds everything cuda/gpu-check.sh needs into target/gpu-check/, on a build machine (this one
# has the Rust toolchain; the GPU machine has not): the polyvision-kernels binary, the backend
# test binary, a rendered frame pair with the rig's calibration, and calibrations of rigs with
# 1920x1080 and 3840x2160 cameras (tables are built on the GPU machine: they are large).
# Stays well under 64 MiB so it can be carried over.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/gpu-check
rm -rf "$OUT" && mkdir -p "$OUT/fixtures"

cargo build --release --locked -p polyvision-cuda -p rig-sim
test_bin=$(cargo test --release --locked -p polyvision-cuda --test backends --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "backends" and m.get("executable"):
        print(m["executable"])')
cp target/release/polyvision-kernels "$OUT/"
cp "$test_bin" "$OUT/backends"
strip "$OUT/polyvision-kernels" "$OUT/backends"

work=$(mktemp -d)
target/release/rig-sim render --seconds 1 --snapshot 10 --out "$work/match" --quiet
cp "$work/match/truth/calibration.json" "$OUT/fixtures/calibration.json"
cp "$work/match/snapshots/left-000010.png" "$OUT/fixtures/left.png"
cp "$work/match/snapshots/right-000010.png" "$OUT/fixtures/right.png"
for size in 1920x1080 3840x2160; do
  w=${size%x*} h=${size#*x}
  cat > "$work/rig-$h.toml" <<RIG
[cameras.left]
width = $w
height = $h
[cameras.right]
width = $w
height = $h
[panorama]
width = $((3 * w))
RIG
  target/release/rig-sim clicks --rig "$work/rig-$h.toml" --out "$work/clicks-$h" --trials 0 >/dev/null
  cp "$work/clicks-$h/truth-calibration.json" "$OUT/rig-$h.json"
done
cp cuda/gpu-check.sh "$OUT/"
rm -rf "$work"
du -sh "$OUT"
echo "carry $OUT to the GPU machine and run: bash $OUT/gpu-check.sh $OUT"
