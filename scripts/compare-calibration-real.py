#!/usr/bin/env python3
"""Leave-one-out calibration error on the real SoccerTrack clicks: our solver against OpenCV.

    .venv/bin/python scripts/compare-calibration-real.py [--shared DIR] [--out DIR] [--check]

For each camera, every clicked landmark of the CVAT file goes into one POINTS.json with the
camera's lens (sensor pixels, nothing dropped by hand: `polyvision-calibrate solve` must leave
out the points the lens cannot undistort and the repeated labels itself). Then:

- ours: `polyvision-calibrate solve --json`; its held-out figures (each inlier left out, the map
  refitted from the others, the click's distance from its pitch position in metres) and the
  expected figures its uncertainty model gives for the same points;
- OpenCV: `cv2.undistortPoints` with the same lens, then for each of our inliers
  `cv2.findHomography(RANSAC)` over all other usable points with the same threshold, and the
  held-out point's distance in metres.

Both lenses are tried: the checkerboard lens as published (it folds back before the image
corners) and the refit of scripts/real-panorama.py (monotonic out to the corners; the one the
stitched panorama uses). Prints a table and writes OUT/calibration-real.json. With --check,
exits 1 unless on every camera and lens the expected median and p90 are at least the measured
ones divided by 1.5 (a fit must not claim to be better than it is, which is how the earlier
solver misled) and at most twice them, and our held-out median is no worse than 1.25x
OpenCV's. Prints SKIPPED and exits 0 when the recording is not there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def load_panorama_module():
    spec = importlib.util.spec_from_file_location("real_panorama", REPO / "scripts/real-panorama.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def opencv_held_out(points, lens, inlier_index, threshold_px):
    import cv2

    k = np.array([[lens["fx"], 0, lens["cx"]], [0, lens["fy"], lens["cy"]], [0, 0, 1]], dtype=np.float64)
    dist = np.array([lens.get(c, 0.0) for c in ("k1", "k2", "p1", "p2", "k3")], dtype=np.float64)
    sensor = np.array([p["pixel"] for p in points], dtype=np.float64).reshape(-1, 1, 2)
    undistorted = cv2.undistortPoints(sensor, k, dist, P=k).reshape(-1, 2)
    pitch = np.array([p["pitch"] for p in points], dtype=np.float64)
    errors = []
    for i in inlier_index:
        rest = [j for j in range(len(points)) if j != i]
        h, _ = cv2.findHomography(pitch[rest], undistorted[rest], cv2.RANSAC, threshold_px)
        if h is None:
            errors.append(float("inf"))
            continue
        back = np.linalg.inv(h) @ np.array([*undistorted[i], 1.0])
        errors.append(float(np.hypot(*(back[:2] / back[2] - pitch[i]))))
    return np.array(errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO / "../shared/data/real/soccertrack")
    ap.add_argument("--bin", type=Path, default=REPO / "target/release")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.shared / "left_keypoints.xml").exists():
        print(f"SKIPPED: no real recording in {args.shared}")
        return
    pano = load_panorama_module()
    out = args.out or Path(tempfile.mkdtemp(prefix="calibration-real-"))
    out.mkdir(parents=True, exist_ok=True)
    results, failures = [], []
    for cam in ("left", "right"):
        published = json.loads((args.shared / f"{cam}_lens.json").read_text())
        refit, _ = pano.refit_lens(published, (pano.W, pano.H))
        for lens_name, lens in (("checkerboard", published), ("refit", refit)):
            kps = pano.read_keypoints(args.shared / f"{cam}_keypoints.xml")
            points = [dict(pixel=k["sensor"], pitch=k["pitch"]) for k in kps]
            doc = dict(image_size=[pano.W, pano.H], points=points, lens=lens, camera=cam)
            path = out / f"{cam}-{lens_name}.points.json"
            path.write_text(json.dumps(doc, indent=1))
            solved = subprocess.run(
                [str(args.bin / "polyvision-calibrate"), "solve", "--points", str(path), "--json"],
                capture_output=True, text=True)
            if solved.returncode != 0:
                raise SystemExit(f"{cam} {lens_name}: solve failed: {solved.stderr.strip()}")
            fit = json.loads(solved.stdout)
            (out / f"{cam}-{lens_name}.solve.json").write_text(json.dumps(fit, indent=1))
            threshold = 4.0 * max(pano.W, pano.H) / 1280.0
            inliers = [i for i, p in enumerate(fit["points"]) if p["inlier"]]
            usable = [i for i, p in enumerate(fit["points"]) if p.get("left_out") is None]
            cv_err = opencv_held_out([points[i] for i in usable], lens,
                                     [usable.index(i) for i in inliers], threshold)
            held = fit["held_out"]
            row = dict(
                camera=cam, lens=lens_name, points=len(points),
                left_out=[dict(label=p["label"], why=p["left_out"]) for p in fit["points"] if p.get("left_out")],
                notes=[dict(label=p["label"], note=p["note"]) for p in fit["points"] if p.get("note")],
                inliers=fit["inliers"], rms_px=fit["rms_px"], sigma_px=fit["sigma_px"],
                ours_median_m=held["median_m"], ours_p90_m=held["p90_m"],
                expected_median_m=held["expected_median_m"], expected_p90_m=held["expected_p90_m"],
                opencv_median_m=float(np.median(cv_err)), opencv_p90_m=float(np.quantile(cv_err, 0.9)),
                visible_pitch_expected_cm=fit["uncertainty"]["median_cm"],
            )
            results.append(row)
            for what in ("median", "p90"):
                ratio = row[f"expected_{what}_m"] / row[f"ours_{what}_m"]
                if not 1 / 1.5 <= ratio <= 2.0:
                    failures.append(f"{cam} {lens_name}: expected {what} / measured = {ratio:.2f}")
            if row["ours_median_m"] > 1.25 * row["opencv_median_m"]:
                failures.append(f"{cam} {lens_name}: held-out median {row['ours_median_m']:.3f} m "
                                f"against OpenCV's {row['opencv_median_m']:.3f} m")
    print(f"{'camera':<7}{'lens':<14}{'points':>7}{'left out':>9}{'inliers':>8}{'rms px':>8}"
          f"{'ours med/p90 m':>17}{'expected med/p90 m':>21}{'OpenCV med/p90 m':>19}")
    for r in results:
        print(f"{r['camera']:<7}{r['lens']:<14}{r['points']:>7}{len(r['left_out']):>9}{r['inliers']:>8}"
              f"{r['rms_px']:>8.2f}{r['ours_median_m']:>9.3f}/{r['ours_p90_m']:<7.3f}"
              f"{r['expected_median_m']:>13.3f}/{r['expected_p90_m']:<7.3f}"
              f"{r['opencv_median_m']:>11.3f}/{r['opencv_p90_m']:<7.3f}")
    for r in results:
        for x in r["left_out"]:
            print(f"  {r['camera']} {r['lens']}: left out {x['label']}: {x['why']}")
        for x in r["notes"]:
            print(f"  {r['camera']} {r['lens']}: {x['label']}: {x['note']}")
    (out / "calibration-real.json").write_text(json.dumps(results, indent=1))
    print(f"written: {out / 'calibration-real.json'}")
    if args.check and failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
