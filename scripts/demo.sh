#!/usr/bin/env bash
# The main job on a fresh machine: set up, render a sample match with the rig simulator, and
# describe it. Real Metrica trajectories are used when ../shared/data is present, a procedural
# match otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release --locked -p rig-sim -p polyvision-calibration -p polyvision-cuda
OUT=${OUT:-out/sample-match}
SIM=target/release/rig-sim

if [ -f ../shared/data/metrica/game3_excerpt/Sample_Game_3_tracking_frames_0001-2100.txt.gz ] || [ -n "${POLYVISION_DATA:-}" ]; then
  SOURCE=metrica
else
  echo "demo: ../shared/data not found; rendering a procedural match instead of the Metrica excerpt"
  SOURCE=procedural
fi

"$SIM" render --source "$SOURCE" --seconds 20 --out "$OUT" --snapshot 275
echo
"$SIM" describe "$OUT"
echo
# Stitch the still of both cameras into the panorama with the rig's true calibration.
CAL=target/release/polyvision-calibrate
"$CAL" check --calibration "$OUT/truth/calibration.json"
"$CAL" lut --calibration "$OUT/truth/calibration.json" --out "$OUT/stitch.table"
target/release/polyvision-kernels stitch --table "$OUT/stitch.table" \
  --left "$OUT/snapshots/left-000275.png" --right "$OUT/snapshots/right-000275.png" \
  --out "$OUT/snapshots/panorama-000275.png"
echo
echo "demo: videos in $OUT/camera-{left,right}.mkv, ground truth in $OUT/truth/, stills and the stitched panorama in $OUT/snapshots/"
