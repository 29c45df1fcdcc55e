#!/usr/bin/env bash
# Retrains the rig's detector from scratch: renders the training clips with the rig simulator,
# trains (CPU), exports models/polyvision-det.onnx, and scores it on held-out clips.
# Takes about 30 minutes on 2 cores (rendering 3 min, training 22 min, scoring 1 min).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-target/detector-training}
cargo build --release --locked -p rig-sim -p polyvision-edge
[ -x .venv-train/bin/python ] || python3 -m venv .venv-train
.venv-train/bin/pip install -q --disable-pip-version-check -r models/requirements-train.txt
rm -rf "$WORK" && mkdir -p "$WORK"
# Training clips: seeds 100–147. Held-out clips: seeds 1000–1003 (other kits, light, masts).
target/release/rig-sim dataset --out "$WORK/train" --first-seed 100 --clips 48 --frames-per-clip 16 --seconds 60
target/release/rig-sim dataset --out "$WORK/held-out" --first-seed 1000 --clips 4 --frames-per-clip 10 --seconds 60
.venv-train/bin/python models/train-detector.py --train "$WORK/train" --out models/polyvision-det \
  --steps "${STEPS:-6000}" --batch 16
target/release/polyvision-edge detect-eval --model models/polyvision-det.onnx --dataset "$WORK/held-out"
