#!/usr/bin/env python3
"""Stitched panorama of the real SoccerTrack two-camera rig, made with this project's own tools.

    .venv/bin/python scripts/real-panorama.py --out DIR [--shared DIR]

Steps (each calls the release binaries in target/release through subprocess):

1. The CVAT keypoints of each camera become a POINTS.json (`polyvision-calibrate solve` input):
   label "(x,y)" (metres from a pitch corner) -> pitch (x - 52.5, 34 - y); pixels are sensor
   pixels, so the lens goes into the document and `solve` undistorts them. Dropped: points the
   checkerboard lens cannot undistort, and of points sharing one pitch label all but the one
   that agrees with a RANSAC homography of the other points (`solve` now leaves such points
   out itself; this selection is kept so that the panorama and its figures stay the same).
2. `solve --json --camera left|right --into calibration.json` per camera, `panorama`, `lut`.
3. Frames 1, 13, 25, ... 241 (1-based) of both videos -> PNG -> `polyvision-kernels stitch`
   -> OUT/frame-NNNNNN.png.
4. `camera_to_panorama(camera, points)` (importable from this file) maps sensor pixels of a
   camera to panorama pixels with the calibration file's lens and homographies; the script
   checks it against the stitching table and reports the largest disagreement.

Workaround (a known CLI limitation, recorded in OUT/report.json): the calibration file refuses
a lens whose radial polynomial folds back inside the image ("distortion folds over inside the
image"), and the stitching table needs every image corner to undistort. The checkerboard
lenses of both cameras fold before the image corners (the largest distorted radius the
polynomial reaches is 0.807 / 0.787 against corners at 0.836 / 0.964). The script therefore
refits k1, k2, k3 (fx, fy, cx, cy, p1, p2 kept) as the minimax fit to the checkerboard
polynomial over the radius where that polynomial is trustworthy (distorted radius up to 90 %
of its maximum), constrained to be monotonic out to 1.06x the corner radius; the report gives
the largest shift this makes inside that radius (about 1 px). That refitted lens is the one in
POINTS.json, in the calibration file, in the table and in camera_to_panorama, so all agree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CAMERAS = ("left", "right")
W, H = 3072, 1728

# ---------------------------------------------------------------------------------------------
# Lens model: the same as calibration/src/lens.rs (OpenCV k1 k2 p1 p2 k3, Newton undistortion).
# ---------------------------------------------------------------------------------------------


def _distort_norm(lens, x, y):
    k1, k2, k3, p1, p2 = (lens.get(k, 0.0) for k in ("k1", "k2", "k3", "p1", "p2"))
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    return (
        x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
        y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
    )


def distort_pixels(lens, pts):
    """Undistorted pixels (N, 2) -> sensor pixels."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    x = (pts[:, 0] - lens["cx"]) / lens["fx"]
    y = (pts[:, 1] - lens["cy"]) / lens["fy"]
    xd, yd = _distort_norm(lens, x, y)
    return np.stack([xd * lens["fx"] + lens["cx"], yd * lens["fy"] + lens["cy"]], axis=1)


def undistort_pixels(lens, pts):
    """Sensor pixels (N, 2) -> undistorted pixels; rows that do not converge are NaN
    (the Newton iteration of lens.rs: 30 steps, accepted within 1e-9)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    k1, k2, k3, p1, p2 = (lens.get(k, 0.0) for k in ("k1", "k2", "k3", "p1", "p2"))
    dx = (pts[:, 0] - lens["cx"]) / lens["fx"]
    dy = (pts[:, 1] - lens["cy"]) / lens["fy"]
    x, y = dx.copy(), dy.copy()
    bad = np.zeros(len(x), dtype=bool)
    for _ in range(30):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dradial = k1 + r2 * (2.0 * k2 + 3.0 * r2 * k3)
        fx_, fy_ = _distort_norm(lens, x, y)
        ex, ey = fx_ - dx, fy_ - dy
        j00 = radial + 2.0 * x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x
        j01 = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
        j11 = radial + 2.0 * y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x
        det = j00 * j11 - j01 * j01
        singular = (np.abs(det) < 1e-12) | ~np.isfinite(det)
        bad |= singular & ~((np.abs(ex) < 1e-14) & (np.abs(ey) < 1e-14))
        det = np.where(singular, 1.0, det)
        step = ~((np.abs(ex) < 1e-14) & (np.abs(ey) < 1e-14)) & ~bad
        x = np.where(step, x - (j11 * ex - j01 * ey) / det, x)
        y = np.where(step, y - (-j01 * ex + j00 * ey) / det, y)
    fx_, fy_ = _distort_norm(lens, x, y)
    bad |= ~((np.abs(fx_ - dx) < 1e-9) & (np.abs(fy_ - dy) < 1e-9))
    out = np.stack([x * lens["fx"] + lens["cx"], y * lens["fy"] + lens["cy"]], axis=1)
    out[bad] = np.nan
    return out


def apply_h(h, pts):
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    q = np.c_[pts, np.ones(len(pts))] @ np.asarray(h, dtype=np.float64).T
    return q[:, :2] / q[:, 2:3]


def _radial_reach(k, r):
    r2 = r * r
    return r * (1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2])))


def refit_lens(lens, size, valid=0.90, margin=1.06):
    """Monotonic k1 k2 k3 close (minimax) to the lens's polynomial where it is trustworthy."""
    from scipy.optimize import linprog

    k0 = np.array([lens["k1"], lens["k2"], lens["k3"]])
    w, h = size
    corner = max(
        np.hypot((u - lens["cx"]) / lens["fx"], (v - lens["cy"]) / lens["fy"])
        for u, v in [(0, 0), (w, 0), (0, h), (w, h)]
    )
    r = np.arange(0, 3, 1e-3)
    slope = 1 + 3 * k0[0] * r**2 + 5 * k0[1] * r**4 + 7 * k0[2] * r**6
    folds = bool((slope <= 0).any())
    r_fold = float(r[np.argmax(slope <= 0)]) if folds else 3.0
    rd_max = float(_radial_reach(k0, r[r < r_fold]).max())
    info = dict(corner_rd=float(corner), fold_ru=r_fold, max_rd=rd_max, original_k=k0.tolist())
    if rd_max >= corner * 1.05:
        info["refit"] = False
        return dict(lens), info
    rt = np.linspace(0, r_fold, 600)
    rt = rt[_radial_reach(k0, rt) <= valid * rd_max]
    phi = np.stack([rt**3, rt**5, rt**7], 1)
    b = _radial_reach(k0, rt) - rt
    best = None
    for ra in np.linspace(rt[-1], 3.0, 120):
        rows, ub = [], []
        for i in range(len(rt)):
            rows += [[*phi[i], -1.0], [*-phi[i], -1.0]]
            ub += [b[i], -b[i]]
        for x in np.linspace(0, ra, 300):
            rows.append([-3 * x**2, -5 * x**4, -7 * x**6, 0.0])
            ub.append(1 - 0.02)
        rows.append([-(ra**3), -(ra**5), -(ra**7), 0.0])
        ub.append(ra - corner * margin)
        res = linprog(
            [0, 0, 0, 1], A_ub=np.array(rows), b_ub=np.array(ub),
            bounds=[(None, None)] * 3 + [(0, None)],
        )
        if res.status == 0 and (best is None or res.x[3] < best[0]):
            best = (res.x[3], ra, res.x[:3])
    if best is None:
        raise SystemExit("lens refit failed")
    t, _, k = best
    out = dict(lens)
    out.update(k1=float(k[0]), k2=float(k[1]), k3=float(k[2]))
    info.update(
        refit=True, refit_k=[float(v) for v in k],
        trusted_rd=float(valid * rd_max), max_shift_px_inside_trusted=float(t * lens["fx"]),
    )
    return out, info


# ---------------------------------------------------------------------------------------------
# Camera pixels -> panorama pixels (with a calibration file)
# ---------------------------------------------------------------------------------------------

def load_calibration(path):
    with open(path) as f:
        return json.load(f)


def camera_to_panorama(camera, points, calibration):
    """Sensor (distorted) pixels of camera `left` or `right`, (N, 2), top-left image corner at
    (0, 0) -> panorama pixels (same convention). NaN where the lens cannot undistort a pixel
    or the point is beyond the horizon.

    sensor px --lens.rs undistortion--> undistorted px --camera pitch_from_image--> pitch m
    --inverse of the panorama pitch_from_image--> panorama px.
    `calibration`: a path or a loaded dict (OUT/calibration.json of a run)."""
    if not isinstance(calibration, dict):
        calibration = load_calibration(calibration)
    cam = next(c for c in calibration["cameras"] if c["name"] == camera)
    und = undistort_pixels(cam["lens"], points)
    pitch = apply_h(cam["pitch_from_image"], und)
    pano_from_pitch = np.linalg.inv(np.asarray(calibration["panorama"]["pitch_from_image"]))
    return apply_h(pano_from_pitch, pitch)


def panorama_to_camera(camera, points, calibration):
    """The inverse: panorama pixels -> sensor pixels of a camera (no visibility test)."""
    cam = next(c for c in calibration["cameras"] if c["name"] == camera)
    pitch = apply_h(calibration["panorama"]["pitch_from_image"], points)
    und = apply_h(np.linalg.inv(np.asarray(cam["pitch_from_image"])), pitch)
    return distort_pixels(cam["lens"], und)


# ---------------------------------------------------------------------------------------------
# Stitching table (format: calibration/src/lut.rs)
# ---------------------------------------------------------------------------------------------


def read_table(path):
    with open(path, "rb") as f:
        header = f.read(48)
        assert header[:8] == b"PVSTITCH", "not a stitching table"
        words = struct.unpack("<10I", header[8:48])
        version, w, h, lw, lh, rw, rh, frac, band, _ = words
        assert version == 1 and frac == 4
        n = w * h
        left = np.frombuffer(f.read(4 * n), dtype="<u4").reshape(h, w)
        right = np.frombuffer(f.read(4 * n), dtype="<u4").reshape(h, w)
        alpha = np.frombuffer(f.read(n), dtype=np.uint8).reshape(h, w)
    return dict(size=(w, h), left=left, right=right, alpha=alpha, band=band, frac=frac)


def unpack(entries, frac=4):
    """Plane entries -> source positions in the *calibration* convention (corner at 0, 0):
    the table stores pixel centres at integers, i.e. calibration x - 0.5."""
    e = np.asarray(entries, dtype=np.uint64)
    x = (e & 0xFFFF).astype(np.float64) / (1 << frac) + 0.5
    y = (e >> 16).astype(np.float64) / (1 << frac) + 0.5
    return np.stack([x, y], axis=-1)


def check_against_table(calibration, table, samples=20000, seed=1):
    rng = np.random.default_rng(seed)
    result = {}
    for cam in CAMERAS:
        plane = table[cam]
        js, is_ = np.nonzero(plane != 0xFFFFFFFF)
        pick = rng.choice(len(js), size=min(samples, len(js)), replace=False)
        js, is_ = js[pick], is_[pick]
        src = unpack(plane[js, is_], table["frac"])
        centre = np.stack([is_ + 0.5, js + 0.5], axis=1)
        back = camera_to_panorama(cam, src, calibration)
        d_back = np.linalg.norm(back - centre, axis=1)
        fwd = panorama_to_camera(cam, centre, calibration)
        d_fwd = np.linalg.norm(fwd - src, axis=1)
        result[cam] = dict(
            samples=int(len(js)),
            camera_to_panorama_max_px=float(np.nanmax(d_back)),
            camera_to_panorama_median_px=float(np.nanmedian(d_back)),
            panorama_to_camera_max_px=float(np.nanmax(d_fwd)),
            not_undistortable=int(np.isnan(d_back).sum()),
        )
    return result


# ---------------------------------------------------------------------------------------------
# The procedure
# ---------------------------------------------------------------------------------------------


def run(cmd, log):
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    log.append(dict(cmd=[str(c) for c in cmd], rc=p.returncode, stdout=p.stdout, stderr=p.stderr))
    if p.stdout.strip() and "--json" not in cmd:
        print(p.stdout.rstrip())
    if p.stderr.strip():
        print(p.stderr.rstrip(), file=sys.stderr)
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(map(str, cmd))}")
    return p.stdout


def read_keypoints(path):
    root = ET.parse(path).getroot()
    out = []
    for i, p in enumerate(root.iter("points")):
        u, v = map(float, p.get("points").split(","))
        x, y = map(float, p.get("label").strip("()").split(","))
        out.append(dict(index=i, label=p.get("label"), sensor=[u, v], pitch=[x - 52.5, 34.0 - y]))
    return out


def make_points(cam, shared, lens_original, lens):
    import cv2

    kps = read_keypoints(shared / f"{cam}_keypoints.xml")
    dropped, kept = [], []
    for k in kps:
        if np.isnan(undistort_pixels(lens_original, [k["sensor"]])).any():
            dropped.append(dict(k, why="the checkerboard lens cannot undistort it (polynomial folds back)"))
        elif np.isnan(undistort_pixels(lens, [k["sensor"]])).any():
            dropped.append(dict(k, why="the refitted lens cannot undistort it"))
        else:
            kept.append(k)
    # Points sharing one pitch label: keep the one a RANSAC homography of the others agrees with.
    labels = [k["label"] for k in kept]
    dup = {lab for lab in labels if labels.count(lab) > 1}
    if dup:
        rest = [k for k in kept if k["label"] not in dup]
        src = np.array([k["pitch"] for k in rest])
        dst = undistort_pixels(lens, [k["sensor"] for k in rest])
        hmat, _ = cv2.findHomography(src, dst, cv2.RANSAC, 4.0)
        for lab in sorted(dup):
            group = [k for k in kept if k["label"] == lab]
            errs = [
                float(np.linalg.norm(apply_h(hmat, [g["pitch"]])[0] - undistort_pixels(lens, [g["sensor"]])[0]))
                for g in group
            ]
            best = int(np.argmin(errs))
            for j, g in enumerate(group):
                if j != best:
                    kept.remove(g)
                    dropped.append(dict(
                        g, why=f"duplicate label {lab}: {errs[j]:.0f} px off a homography of the "
                        f"other points (the kept one with this label is {errs[best]:.1f} px off)"))
    doc = dict(
        image_size=[W, H],
        points=[dict(pixel=k["sensor"], pitch=k["pitch"]) for k in kept],
        lens=lens,
        camera=cam,
    )
    return doc, kept, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO / "../shared/data/real/soccertrack")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--bin", type=Path, default=REPO / "target/release")
    ap.add_argument("--first", type=int, default=1, help="first frame, 1-based")
    ap.add_argument("--last", type=int, default=241, help="last frame, 1-based")
    ap.add_argument("--step", type=int, default=12)
    ap.add_argument("--backend", default="cpu", help="stitch backend: auto, cpu or cuda")
    ap.add_argument("--width", type=int, default=3840, help="panorama width")
    args = ap.parse_args()
    import cv2

    shared, out = args.shared.resolve(), args.out.resolve()
    calibrate = args.bin / "polyvision-calibrate"
    kernels = args.bin / "polyvision-kernels"
    work = out / "work"
    out.mkdir(parents=True, exist_ok=True)
    for stale in [work, out / "calibration.json.history"]:
        if stale.exists():
            shutil.rmtree(stale)
    for stale in [out / "calibration.json", out / "table.pvstitch"]:
        stale.unlink(missing_ok=True)
    work.mkdir()
    log, report = [], dict(workarounds=[], cameras={})

    # 1. points, lens, solve -------------------------------------------------------------------
    for cam in CAMERAS:
        lens_original = json.loads((shared / f"{cam}_lens.json").read_text())
        lens, lens_info = refit_lens(lens_original, (W, H))
        doc, kept, dropped = make_points(cam, shared, lens_original, lens)
        points_path = work / f"{cam}.points.json"
        points_path.write_text(json.dumps(doc, indent=1))
        # The panorama, its labels and the detection figures of models/README were made with a
        # 4 px RANSAC threshold (solve's default before it was scaled to the image): pinned here
        # so that they stay reproducible.
        fixed = ["--threshold-px", "4"]
        fit = json.loads(run([calibrate, "solve", "--points", points_path, "--json", *fixed,
                              "--camera", cam, "--into", out / "calibration.json"], log))
        (work / f"{cam}.solve.json").write_text(json.dumps(fit, indent=1))
        run([calibrate, "solve", "--points", points_path, *fixed], log)  # the human-readable table too
        (work / f"{cam}.solve.txt").write_text(log[-1]["stdout"])
        outliers = [
            dict(label=kept[i]["label"], sensor=kept[i]["sensor"], error_px=round(p["error_px"], 2))
            for i, p in enumerate(fit["points"]) if not p["inlier"]
        ]
        report["cameras"][cam] = dict(
            lens=lens_info, points_in_xml=len(kept) + len(dropped), points_used=len(kept),
            dropped=[dict(label=d["label"], sensor=d["sensor"], why=d["why"]) for d in dropped],
            inliers=fit["inliers"], rms_px=fit["rms_px"], sigma_px=fit["sigma_px"],
            expected_error_cm=fit["uncertainty"], outliers=outliers,
        )
    report["workarounds"].append(
        "lens refitted (k1 k2 k3) because the calibration file refuses the checkerboard lens: "
        "'field `cameras[0].lens`: distortion folds over inside the image (radial terms not "
        "monotonic)', and the table needs the image corners to undistort")
    report["workarounds"].append(
        "duplicates and points the lens cannot undistort are dropped before solve (solve would "
        "leave them out itself; kept so that the panorama stays the one the figures were made on)")

    cal_path = out / "calibration.json"
    run([calibrate, "check", "--calibration", cal_path], log)
    pano_out = run([calibrate, "panorama", "--calibration", cal_path, "--width", args.width], log)
    table_path = out / "table.pvstitch"
    lut_out = run([calibrate, "lut", "--calibration", cal_path, "--out", table_path], log)
    run([calibrate, "check", "--calibration", cal_path], log)
    calibration = load_calibration(cal_path)
    report["panorama"] = dict(
        size=calibration["panorama"]["image_size"], tilt_deg=calibration["panorama"].get("tilt_deg"),
        panorama_stdout=pano_out.strip(), lut_stdout=lut_out.strip())

    # 2. frames and stitch ---------------------------------------------------------------------
    frames = list(range(args.first, args.last + 1, args.step))
    frame_dir = work / "frames"
    frame_dir.mkdir()
    wanted = {f - 1 for f in frames}
    for cam in CAMERAS:
        cap = cv2.VideoCapture(str(shared / f"{cam}_camera.mp4"))
        index = 0
        while index <= max(wanted):
            ok, img = cap.read()
            if not ok:
                raise SystemExit(f"{cam}: video ended at picture {index}")
            if index in wanted:
                assert img.shape[:2] == (H, W), img.shape
                cv2.imwrite(str(frame_dir / f"{cam}-{index + 1:06d}.png"), img)
            index += 1
        cap.release()
    for f in frames:
        run([kernels, "stitch", "--table", table_path,
             "--left", frame_dir / f"left-{f:06d}.png", "--right", frame_dir / f"right-{f:06d}.png",
             "--out", out / f"frame-{f:06d}.png", "--backend", args.backend], log)
    report["frames"] = [f"frame-{f:06d}.png" for f in frames]

    # 3. camera_to_panorama against the table --------------------------------------------------
    report["camera_to_panorama_vs_table"] = check_against_table(calibration, read_table(table_path))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (work / "commands.json").write_text(json.dumps(log, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("panorama", "camera_to_panorama_vs_table")}, indent=2))


if __name__ == "__main__":
    main()
