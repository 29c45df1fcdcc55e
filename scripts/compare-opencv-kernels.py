#!/usr/bin/env python3
"""Our CPU stitch and preprocessing against OpenCV on the same inputs, same thread count, one run.

Stitch: the rig's stitching table applied to two rendered camera frames.
  ours    polyvision-kernels bench-stitch (one fused pass: two bilinear samples, blend)
  OpenCV  cv2.remap (INTER_LINEAR, fixed-point maps from cv2.convertMaps) of each camera into the
          panorama, then cv2.blendLinear with the table's weights
  Equality: outside the seam band (weight 0 or 255) every channel within 1 LSB of OpenCV's remap.

Preprocessing: 6 tiles of the panorama letterboxed into 640 x 640, /255, planar float32 (and
float16).
  ours    polyvision-kernels bench-preprocess (one fused pass)
  OpenCV  cv2.resize (INTER_LINEAR) + cv2.copyMakeBorder (114) per tile, cv2.dnn.blobFromImages;
          timed from the RGBA panorama (with cv2.cvtColor, as the pipeline has it) and, the
          stronger baseline, from a 3-channel copy made outside the timing.

Both sides run with --threads / cv2.setNumThreads at the same count, alternately for --rounds
rounds; each side's figure is its best round (these machines are noisy). The ratios are printed
(about 2-2.7x in ours' favour on 2 idle cores); the check only catches a lost order of magnitude,
which another process loading the machine cannot fake: exits 1 when ours is more than 2x slower
than the stronger OpenCV baseline (RATIO_FLOOR) or the outputs differ by more than 1 LSB.

Usage: python3 scripts/compare-opencv-kernels.py --table T --left L.png --right R.png [--bin target/release]
  e.g. after scripts/demo.sh: --table out/sample-match/stitch.table
       --left out/sample-match/snapshots/left-000275.png --right out/sample-match/snapshots/right-000275.png
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

# Ours against OpenCV below which the check fails: 0.5 is ours at half OpenCV's speed, 4-5x
# below what it measures; machine noise moves the ratio by tens of percent, not by that.
RATIO_FLOOR = 0.5


def best_of(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def read_table(path):
    raw = path.read_bytes()
    if raw[:8] != b"PVSTITCH":
        sys.exit(f"{path}: not a stitching table")
    words = np.frombuffer(raw[8:48], "<u4")
    version, w, h, lw, lh, rw, rh, frac = (int(v) for v in words[:8])
    n = w * h
    left = np.frombuffer(raw[48:48 + 4 * n], "<u4").reshape(h, w)
    right = np.frombuffer(raw[48 + 4 * n:48 + 8 * n], "<u4").reshape(h, w)
    weight = np.frombuffer(raw[48 + 8 * n:48 + 9 * n], "u1").reshape(h, w)
    return (w, h), left, right, weight, 1 << frac


def maps_of(plane, scale):
    seen = plane != 0xFFFFFFFF
    x = np.where(seen, (plane & 0xFFFF).astype(np.float32) / scale, -1).astype(np.float32)
    y = np.where(seen, (plane >> 16).astype(np.float32) / scale, -1).astype(np.float32)
    m1, m2 = cv2.convertMaps(x, y, cv2.CV_16SC2)
    return m1, m2, seen


def kernels(args, *extra):
    out = subprocess.run([str(args.bin / "polyvision-kernels"), *extra], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", type=pathlib.Path, required=True, help="stitching table")
    parser.add_argument("--left", type=pathlib.Path, required=True, help="camera L frame (PNG)")
    parser.add_argument("--right", type=pathlib.Path, required=True, help="camera R frame (PNG)")
    parser.add_argument("--bin", type=pathlib.Path, default=pathlib.Path("target/release"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    left_png, right_png, table_path = args.left, args.right, args.table
    failures = []

    # ---- stitch ----
    (w, h), lplane, rplane, weight, scale = read_table(table_path)
    left = cv2.cvtColor(cv2.imread(str(left_png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGBA)
    right = cv2.cvtColor(cv2.imread(str(right_png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGBA)
    lm1, lm2, lseen = maps_of(lplane, scale)
    rm1, rm2, rseen = maps_of(rplane, scale)
    wl = (weight.astype(np.float32) / 255.0)
    wr = (1.0 - wl).astype(np.float32)

    def opencv_stitch():
        a = cv2.remap(left, lm1, lm2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        b = cv2.remap(right, rm1, rm2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return a, b, cv2.blendLinear(a, b, wl, wr)

    cv_rounds, our_rounds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "pano.rgba"
        for _ in range(args.rounds):
            cv_rounds.append(best_of(opencv_stitch, args.repeats)[1])
            ours = kernels(args, "bench-stitch", "--table", str(table_path), "--left", str(left_png),
                           "--right", str(right_png), "--iterations", str(args.repeats),
                           "--threads", str(args.threads), "--write-output", str(raw))
            our_rounds.append(ours)
        pano = np.frombuffer(raw.read_bytes(), "u1").reshape(h, w, 4)
    cv_median = min(cv_rounds)
    cv_best = max(cv_rounds)
    ours = min(our_rounds, key=lambda r: r["ms_per_frame"])
    a, b, _ = opencv_stitch()
    only_l = (weight == 255) & lseen
    only_r = (weight == 0) & rseen
    diff_l = np.abs(pano[only_l][:, :3].astype(int) - a[only_l][:, :3].astype(int)).max()
    diff_r = np.abs(pano[only_r][:, :3].astype(int) - b[only_r][:, :3].astype(int)).max()
    stitch_ratio = cv_median * 1e3 / ours["ms_per_frame"]
    print(f"stitch {w}x{h} from 2 x {left.shape[1]}x{left.shape[0]} RGBA, {args.threads} threads:")
    print(f"  ours   {ours['ms_per_frame']:7.2f} ms/frame ({ours['gb_per_s']:.1f} GB/s)")
    print(f"  OpenCV {cv_median * 1e3:7.2f} ms/frame (worst round {cv_best * 1e3:.2f}): 2 x remap + blendLinear")
    print(f"  ours is {stitch_ratio:.2f}x faster; max difference outside the seam band: "
          f"{diff_l} (camera L pixels), {diff_r} (camera R pixels) LSB over {only_l.sum() + only_r.sum()} pixels")
    if stitch_ratio < RATIO_FLOOR:
        failures.append(f"stitch {1 / stitch_ratio:.2f}x slower than OpenCV (a lost order of magnitude)")
    if max(diff_l, diff_r) > 1:
        failures.append(f"stitch differs from OpenCV's remap by {max(diff_l, diff_r)} LSB")

    # ---- preprocessing ----
    pano_rgba = np.ascontiguousarray(pano)
    tiles, size = 6, 640
    tile_w = w // tiles
    pano_png = pathlib.Path(tempfile.mkdtemp()) / "pano.png"
    cv2.imwrite(str(pano_png), cv2.cvtColor(pano_rgba, cv2.COLOR_RGBA2BGR))
    pano_rgb = cv2.cvtColor(pano_rgba, cv2.COLOR_RGBA2RGB)

    def letterbox(rgb):
        out = []
        for i in range(tiles):
            crop = rgb[:, i * tile_w:(i + 1) * tile_w]
            s = min(size / tile_w, size / h)
            pw, ph = round(tile_w * s), round(h * s)
            resized = cv2.resize(crop, (pw, ph), interpolation=cv2.INTER_LINEAR)
            left_pad, top_pad = (size - pw) // 2, (size - ph) // 2
            out.append(cv2.copyMakeBorder(resized, top_pad, size - ph - top_pad, left_pad, size - pw - left_pad,
                                          cv2.BORDER_CONSTANT, value=(114, 114, 114)))
        return cv2.dnn.blobFromImages(out, scalefactor=1.0 / 255.0, size=(size, size), mean=(0, 0, 0),
                                      swapRB=False, crop=False)

    results = {}
    for precision in ("f32", "f16"):
        cast = (lambda t: t) if precision == "f32" else (lambda t: t.astype(np.float16))
        rgba_rounds, rgb_rounds, our_rounds = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            raw = pathlib.Path(tmp) / "tensor.bin"
            for _ in range(args.rounds):
                rgba_rounds.append(best_of(lambda: cast(letterbox(cv2.cvtColor(pano_rgba, cv2.COLOR_RGBA2RGB))),
                                           args.repeats)[1])
                rgb_rounds.append(best_of(lambda: cast(letterbox(pano_rgb)), args.repeats)[1])
                our_rounds.append(kernels(args, "bench-preprocess", "--image", str(pano_png), "--tiles", str(tiles),
                                          "--size", str(size), "--precision", precision, "--iterations",
                                          str(args.repeats), "--threads", str(args.threads),
                                          "--write-output", str(raw)))
            tensor = np.frombuffer(raw.read_bytes(), np.float32 if precision == "f32" else np.float16)
        from_rgba, from_rgb = min(rgba_rounds), min(rgb_rounds)
        ours = min(our_rounds, key=lambda r: r["ms_per_batch"])
        reference = letterbox(pano_rgb).ravel()
        diff = float(np.abs(tensor.astype(np.float32) - reference).max())
        ratio = from_rgb * 1e3 / ours["ms_per_batch"]
        results[precision] = ratio
        print(f"preprocess {tiles} tiles of {tile_w}x{h} -> {tiles}x3x{size}x{size} {precision}, {args.threads} threads:")
        print(f"  ours   {ours['ms_per_batch']:7.2f} ms/batch")
        print(f"  OpenCV {from_rgb * 1e3:7.2f} ms/batch from RGB ({from_rgba * 1e3:.2f} from RGBA with cvtColor): "
              "resize + copyMakeBorder + blobFromImages")
        print(f"  ours is {ratio:.2f}x faster (from RGB), {from_rgba * 1e3 / ours['ms_per_batch']:.2f}x (from RGBA); "
              f"max difference {diff:.4f} (OpenCV resizes in 11-bit fixed point, ours in float)")
        if ratio < RATIO_FLOOR:
            failures.append(f"preprocess {precision} {1 / ratio:.2f}x slower than OpenCV (a lost order of magnitude)")
        if diff > 2.5 / 255:
            failures.append(f"preprocess {precision} differs from OpenCV by {diff:.4f}")

    for f in failures:
        print("FAIL:", f)
    print("compare-opencv-kernels:", "failed" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
