#!/usr/bin/env bash
# The main job on a fresh machine: set up, render a sample match with the rig simulator, and
# describe it. Real Metrica trajectories are used when ../shared/data is present, a procedural
# match otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release --locked -p rig-sim
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
echo "demo: videos in $OUT/camera-{left,right}.mkv, ground truth in $OUT/truth/, stills in $OUT/snapshots/"
