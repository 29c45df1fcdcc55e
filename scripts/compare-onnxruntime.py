#!/usr/bin/env python3
"""Time the detector in tract (polyvision-edge bench-detect) and in ONNX Runtime on the same
model and the same preprocessed tiles, in one run, and print the ratio.

bench-detect times the whole detection stage on a panorama and inference alone on one batch
of tiles, and dumps that batch (raw float32, NCHW); ONNX Runtime (CPU execution provider, the
same number of threads) then runs the same batch.

Usage: .venv/bin/python scripts/compare-onnxruntime.py --bin target/release \
           --model models/polyvision-det.onnx --image PANORAMA.png [--threads 2] [--batch 4]
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--model", default="models/polyvision-det.onnx")
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "input.f32"
        out = subprocess.run(
            [f"{args.bin}/polyvision-edge", "bench-detect", "--model", args.model, "--image",
             args.image, "--threads", str(args.threads), "--batch", str(args.batch),
             "--runs", str(args.runs), "--dump-input", str(dump)],
            check=True, capture_output=True, text=True,
        ).stdout
        print(out, end="")
        tract_ms = float(re.search(r"tract inference ([0-9.]+) ms per batch", out).group(1))
        x = np.fromfile(dump, dtype="<f4")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    size = shape[-1]
    x = x.reshape(-1, 3, size, size)
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    started = time.perf_counter()
    for _ in range(args.runs):
        session.run(None, {name: x})
    ort_ms = (time.perf_counter() - started) / args.runs * 1e3
    print(f"onnxruntime {ort.__version__}: {ort_ms:.1f} ms per batch of {x.shape[0]}, "
          f"{ort_ms / x.shape[0]:.1f} ms per tile ({args.threads} threads)")
    ratio = tract_ms / ort_ms
    print(f"tract / onnxruntime time: {ratio:.2f} ({'tract faster' if ratio < 1 else 'onnxruntime faster'})")
    print("compare-onnxruntime: ok")


if __name__ == "__main__":
    sys.exit(main())
