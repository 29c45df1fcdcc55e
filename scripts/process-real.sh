#!/usr/bin/env bash
# The real SoccerTrack recording (../shared/data/real/soccertrack) through the production
# pipeline with one command:
#
#   bash scripts/process-real.sh [OUT] [process options...]     (OUT defaults to out/real)
#
# 1. builds the release binaries if they are missing, and the Python tools' virtualenv;
# 2. makes the two-camera calibration from the clicked landmarks (scripts/real-panorama.py:
#    `polyvision-calibrate solve --camera left|right --into`, `panorama`; OUT/rig/);
# 3. runs `polyvision-edge process` on the two videos: the cameras' offset found from the
#    overlap, the right camera's colour matched, stitched, detected with the model trained on
#    real footage, tracked; writes OUT/buffer.db, tracks.txt, metrics.csv, preview.png, run.json.
#
# The whole 10 s takes about 20 minutes on two CPU cores (the detector, about 4 s a panorama);
# `--max-frames 50` stops after 2 s. Extra options go to `process` (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/real}
shift || true
SHARED=${POLYVISION_SHARED:-../shared}
FOOTAGE="$SHARED/data/real/soccertrack"
for f in left_camera.mp4 right_camera.mp4 left_keypoints.xml right_keypoints.xml; do
  [ -f "$FOOTAGE/$f" ] || { echo "process-real: $FOOTAGE/$f is missing (set POLYVISION_SHARED)" >&2; exit 1; }
done
if [ ! -x target/release/polyvision-edge ] || [ ! -x target/release/polyvision-calibrate ] \
  || [ ! -x target/release/polyvision-kernels ]; then
  cargo build --release --locked -p polyvision-edge -p polyvision-calibration -p polyvision-cuda --bins
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
mkdir -p "$OUT/rig"
.venv/bin/python scripts/real-panorama.py --shared "$FOOTAGE" --out "$OUT/rig" --first 1 --last 1 > /dev/null
rm -rf "$OUT/rig/work"
echo "process-real: calibration in $OUT/rig/calibration.json"
exec target/release/polyvision-edge process \
  --left "$FOOTAGE/left_camera.mp4" --right "$FOOTAGE/right_camera.mp4" \
  --calibration "$OUT/rig/calibration.json" --out "$OUT" "$@"
