#!/usr/bin/env python3
"""Compare `polyvision-calibrate solve` with OpenCV's findHomography on simulated clicks.

For each view of the simulated rig (camera L, camera R, the panorama) the rig simulator writes
sets of landmark clicks with known noise; both estimators fit a homography to the same clicks,
and each fit is scored by its position error over every visible point of a 1 m grid on the
pitch, against the simulator's true geometry.

Two rounds:
  clean     10 landmarks per set, sigma = 1 px: our error must not exceed OpenCV's
            (median and 95th percentile over all sets, per view).
  outliers  10 landmarks per set, 2 of them gross errors (20 %): RANSAC must flag exactly the
            gross errors in every set, and the error must stay near the clean figures.

Usage: python3 scripts/compare-opencv.py [--bin target/release] [--trials 20] [--keep DIR]
Needs numpy and opencv-python-headless (scripts/test.sh installs them into .venv).
Exits 1 when a check fails.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import cv2
import numpy as np

VIEWS = ("left", "right", "panorama")


def undistort(points, lens):
    """Sensor pixels -> undistorted pixels with the file's Brown-Conrady lens (OpenCV order)."""
    if lens is None:
        return points
    k = np.array([[lens["fx"], 0, lens["cx"]], [0, lens["fy"], lens["cy"]], [0, 0, 1]], float)
    dist = np.array([lens.get(c, 0.0) for c in ("k1", "k2", "p1", "p2", "k3")], float)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    out = cv2.undistortPoints(points.reshape(-1, 1, 2), k, dist, R=None, P=k, criteria=criteria)
    return out.reshape(-1, 2)


def opencv_fit(clicks, landmarks, threshold_px):
    pitch = np.array([landmarks[p["landmark"]] for p in clicks["points"]], float)
    pixels = undistort(np.array([p["pixel"] for p in clicks["points"]], float), clicks.get("lens"))
    # pitch -> image, so that the RANSAC threshold is in pixels like ours.
    g, mask = cv2.findHomography(pitch, pixels, cv2.RANSAC, threshold_px)
    if g is None:
        return None, None
    return np.linalg.inv(g), mask.ravel().astype(bool)


def our_fit(calibrate, path, threshold_px):
    out = subprocess.run(
        [str(calibrate), "solve", "--points", str(path), "--json", "--threshold-px", str(threshold_px)],
        check=True,
        capture_output=True,
        text=True,
    )
    fit = json.loads(out.stdout)
    return np.array(fit["pitch_from_image"], float), np.array([p["inlier"] for p in fit["points"]])


def errors_cm(h, grid):
    px = np.array([g["pixel"] for g in grid], float)
    truth = np.array([g["pitch"] for g in grid], float)
    homo = np.c_[px, np.ones(len(px))] @ h.T
    mapped = homo[:, :2] / homo[:, 2:3]
    return 100.0 * np.hypot(*(mapped - truth).T)


def run_round(args, workdir, name, outliers):
    folder = workdir / name
    subprocess.run(
        [str(args.bin / "rig-sim"), "clicks", "--out", str(folder), "--trials", str(args.trials),
         "--points", "10", "--sigma-px", "1", "--outliers", str(outliers)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    table = json.loads(
        subprocess.run([str(args.bin / "polyvision-calibrate"), "landmarks", "--json"],
                       check=True, capture_output=True, text=True).stdout
    )
    landmarks = {l["name"]: l["position"] for l in table}
    results = {}
    for view in VIEWS:
        grid = json.loads((folder / f"{view}-grid.json").read_text())
        ours, theirs, ours_flags_ok, theirs_flags_ok = [], [], 0, 0
        for trial in range(args.trials):
            path = folder / f"{view}-{trial:03d}.json"
            clicks = json.loads(path.read_text())
            n_bad = round(outliers * len(clicks["points"]))
            expected = np.array([i >= n_bad for i in range(len(clicks["points"]))])
            h_ours, in_ours = our_fit(args.bin / "polyvision-calibrate", path, args.threshold_px)
            h_cv, in_cv = opencv_fit(clicks, landmarks, args.threshold_px)
            ours.append(errors_cm(h_ours, grid))
            ours_flags_ok += bool(np.array_equal(in_ours, expected))
            if h_cv is not None:
                theirs.append(errors_cm(h_cv, grid))
                theirs_flags_ok += bool(np.array_equal(in_cv, expected))
            else:
                theirs.append(np.full(len(grid), np.inf))
        ours, theirs = np.concatenate(ours), np.concatenate(theirs)
        results[view] = {
            "ours": (np.median(ours), np.percentile(ours, 95)),
            "opencv": (np.median(theirs), np.percentile(theirs, 95)),
            "flags": (ours_flags_ok, theirs_flags_ok),
        }
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", type=pathlib.Path, default=pathlib.Path("target/release"))
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--threshold-px", type=float, default=4.0)
    parser.add_argument("--keep", type=pathlib.Path, help="keep the click sets in this folder")
    args = parser.parse_args()
    for tool in ("rig-sim", "polyvision-calibrate"):
        if not (args.bin / tool).exists():
            sys.exit(f"{args.bin / tool} is missing: cargo build --release -p rig-sim -p polyvision-calibration")

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or pathlib.Path(tmp)
        clean = run_round(args, workdir, "clean", 0.0)
        dirty = run_round(args, workdir, "outliers", 0.2)

    failures = []
    print(f"position error over the visible pitch, cm ({args.trials} sets of 10 clicks per view, sigma 1 px, "
          f"RANSAC threshold {args.threshold_px} px)")
    print(f"{'view':<9} {'round':<9} {'ours median':>11} {'p95':>7} {'OpenCV median':>13} {'p95':>7} "
          f"{'ratio':>6}  {'outliers found (ours / OpenCV)':>30}")
    for view in VIEWS:
        for name, res in (("clean", clean[view]), ("outliers", dirty[view])):
            (om, op), (cm, cp) = res["ours"], res["opencv"]
            ratio = om / cm if cm > 0 else float("nan")
            flags = f"{res['flags'][0]}/{args.trials} / {res['flags'][1]}/{args.trials}" if name == "outliers" else ""
            print(f"{view:<9} {name:<9} {om:>11.1f} {op:>7.1f} {cm:>13.1f} {cp:>7.1f} {ratio:>6.3f}  {flags:>30}")
        (om, op), (cm, cp) = clean[view]["ours"], clean[view]["opencv"]
        # "Not worse": within 0.5 % for floating-point differences between two exact optimisers.
        if om > cm * 1.005 or op > cp * 1.005:
            failures.append(f"{view}: ours {om:.1f}/{op:.1f} cm is worse than OpenCV's {cm:.1f}/{cp:.1f} cm")
        if dirty[view]["flags"][0] != args.trials:
            failures.append(f"{view}: RANSAC missed the gross errors in "
                            f"{args.trials - dirty[view]['flags'][0]} of {args.trials} sets")
        dm, dp = dirty[view]["ours"]
        if dp > 2.0 * op:
            failures.append(f"{view}: with outliers the p95 error is {dp:.1f} cm against {op:.1f} cm clean")
    for f in failures:
        print("FAIL:", f)
    print("compare-opencv:", "failed" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
