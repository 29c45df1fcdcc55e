#!/usr/bin/env bash
# The main job on a fresh machine: set up, build, and run `polyvision-edge demo` — a sample
# match rendered by the rig simulator (real Metrica trajectories when ../shared/data is there, a
# procedural match otherwise) through the whole pipeline with the CPU backends: capture
# (GStreamer), pairing, stitching, detection (the shipped model, tract), tracking, the SQLite
# buffer; then a summary. DEMO_SECONDS sets the length (default 8 s), OUT the folder.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release --locked -p rig-sim -p polyvision-edge
OUT=${OUT:-out/demo}
target/release/polyvision-edge demo --dir "$OUT" --seconds "${DEMO_SECONDS:-8}"
