#!/usr/bin/env bash
# Retrains the rig's detector: FootAndBall's published weights (../shared/data/real/footandball)
# fine-tuned on the first 6 s of the real SoccerTrack rig (frames cut from ../shared by
# scripts/real-labels.py, boxes from models/real-labels/) and on panoramas rendered by the rig
# simulator; exports models/polyvision-det-real.onnx with its card, and scores it on held-out
# rendered clips and on the real frames of the last 4 s.
# Takes about 40 minutes on 2 cores (rendering 5 min, training 29 min, scoring 6 min).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-target/detector-training-real}
SHARED=${SHARED:-../shared/data/real}
cargo build --release --locked -p rig-sim -p polyvision-edge -p polyvision-calibration -p polyvision-cuda
[ -x .venv-train/bin/python ] || python3 -m venv .venv-train
.venv-train/bin/pip install -q --disable-pip-version-check -r models/requirements-train.txt
rm -rf "$WORK" && mkdir -p "$WORK"
# Rendered training clips: seeds 100–131. Held-out: seeds 1000–1003 (other kits, light, masts).
target/release/rig-sim dataset --out "$WORK/rendered" --first-seed 100 --clips 32 --frames-per-clip 12 --seconds 60 --quiet
target/release/rig-sim dataset --out "$WORK/held-out" --first-seed 1000 --clips 4 --frames-per-clip 10 --seconds 60 --quiet
# Real frames: the first 6 s for training, the last 4 s for the figures only.
.venv-train/bin/python scripts/real-labels.py --shared "$SHARED/soccertrack" --only left,right cut --out "$WORK/real-tune" --part tune
.venv-train/bin/python scripts/real-labels.py --shared "$SHARED/soccertrack" --only left,right cut --out "$WORK/real-figures" --part figures
# Our panorama of the rig at the same instants (project calibration and stitcher), labels carried.
.venv-train/bin/python scripts/real-panorama.py --shared "$SHARED/soccertrack" --out "$WORK/stitched" > /dev/null
.venv-train/bin/python scripts/real-labels.py panorama --panorama "$WORK/stitched" --out "$WORK/panorama-tune" --part tune
.venv-train/bin/python models/train-footandball.py --real "$WORK/real-tune" --real-panorama "$WORK/panorama-tune" --rendered "$WORK/rendered" \
  --weights "$SHARED/footandball/model_20201019_1416_final.pth" --out models/polyvision-det-real \
  --steps "${STEPS:-1500}" --batch 16
target/release/polyvision-edge detect-eval --model models/polyvision-det-real.onnx --dataset "$WORK/held-out"
target/release/polyvision-edge detect-eval --model models/polyvision-det-real.onnx --dataset "$WORK/real-figures" --people --pitch-mask
