#!/usr/bin/env python3
"""The real labelled set: frames of the SoccerTrack rig (../shared/data/real/soccertrack) with a
box for every person and the ball, and 20 frames of OpenCV's vtest.avi (Debian opencv-doc:
people walking, filmed from a fixed elevated camera) with a box for every person.
Labels: models/real-labels/{left,right,vtest}.txt.

  draft   candidate boxes for the labelled frames: FootAndBall (models/footandball.py) run on the
          whole frame, and the blobs a median background over the 10 s clip leaves that no
          detection covers (the cameras are fixed). People whose feet are outside the pitch
          (2 m margin; from the clicked landmarks and the lens) get visibility 0: don't-care.
          Writes MOTChallenge rows `frame,id,x,y,w,h,1,class,visibility` (class 1 person,
          4 ball; id −1 a detection, −2 a background blob still to be checked).
  review  draws the boxes of a label file on its frames (green: person, grey: don't-care,
          magenta: ball, yellow: unchecked blob), in halves of the frame at full resolution,
          into a folder outside git, for checking by eye.
  cut     the frames of a label file as a `detect-eval` dataset: `clip-<camera>-<part>/
          frame-NNNNNN.png` with its `gt.txt`; `--part tune` frames of the first 6 s (for
          anything fitted or tuned), `--part figures` the last 4 s (for the figures), `all`;
          with the pitch outline (2 m margin) as `pitch.txt` for `detect-eval --pitch-mask`.
  panorama  the same for our stitched panorama of the rig (scripts/real-panorama.py): the
          camera labels carried into it (`clip-panorama-<part>`).

Frames are numbered from 1 (MOTChallenge); frame n is the video's (n−1)-th picture.
Needs numpy and opencv-python-headless (scripts/requirements-test.txt); draft also onnx and
onnxruntime.
"""

import argparse
import importlib.util
import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CAMERAS = ("left", "right")
FPS = 25
TUNE_SECONDS = 6.0
# The labelled frames: every 12th picture of the 250, 0 … 240 (21 per camera).
LABELLED = [1 + 12 * k for k in range(21)]


def part_of(frame):
    return "tune" if (frame - 1) / FPS < TUNE_SECONDS else "figures"


def read_frames(video, wanted):
    """The pictures numbered `wanted` (1-based) of a video, BGR, in order."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"{video}: cannot be opened (is it there? OpenCV with FFmpeg?)")
    wanted = set(wanted)
    out, n = {}, 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        if n in wanted:
            out[n] = frame
    missing = sorted(wanted - set(out))
    if missing:
        raise SystemExit(f"{video}: has {n} pictures; frames {missing[:5]} … are past its end")
    return out


def read_labels(path):
    rows = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 9:
            raise SystemExit(f"{path}:{i}: expected frame,id,x,y,w,h,conf,class,visibility")
        rows.append((int(f[0]), int(f[1]), *map(float, f[2:6]), float(f[6]), int(f[7]), float(f[8])))
    return rows


def write_labels(path, rows, header):
    with open(path, "w") as f:
        for line in header:
            f.write(f"# {line}\n")
        for fr, tid, x, y, w, h, conf, cls, vis in sorted(rows, key=lambda r: (r[0], r[7], r[2])):
            f.write(f"{fr},{tid},{x:.1f},{y:.1f},{w:.1f},{h:.1f},{conf:g},{cls},{vis:g}\n")


def pitch_outline(camera, shared, margin=2.0):
    """The pitch's edge plus `margin` metres as a polygon in the camera's (distorted) pixels."""
    lens = json.loads((shared / f"{camera}_lens.json").read_text())
    k = np.array([[lens["fx"], 0, lens["cx"]], [0, lens["fy"], lens["cy"]], [0, 0, 1]])
    dist = np.array([lens["k1"], lens["k2"], lens["p1"], lens["p2"], lens["k3"]])
    pix, pitch = [], []
    for image in ET.parse(shared / f"{camera}_keypoints.xml").getroot().iter("image"):
        for p in image.iter("points"):
            m = re.match(r"\(([-\d.]+),([-\d.]+)\)", p.get("label", ""))
            if not m:
                continue
            u, v = map(float, p.get("points").split(";")[0].split(","))
            pix.append((u, v))
            pitch.append((float(m.group(1)), float(m.group(2))))
    pix = np.array(pix, np.float64)
    und = cv2.undistortPoints(pix.reshape(-1, 1, 2), k, dist).reshape(-1, 2)
    # Points where the lens polynomial folds back undistort to nonsense; RANSAC drops them
    # with the mislabelled ones.
    hom, inliers = cv2.findHomography(np.array(pitch), und, cv2.RANSAC, 0.004)
    if hom is None:
        raise SystemExit(f"{camera}: the landmarks give no homography")
    edge = []
    x0, x1, y0, y1 = -margin, 105 + margin, -margin, 68 + margin
    for t in np.linspace(0, 1, 200):
        edge.append((x0 + t * (x1 - x0), y0))
    for t in np.linspace(0, 1, 200):
        edge.append((x1, y0 + t * (y1 - y0)))
    for t in np.linspace(0, 1, 200):
        edge.append((x1 - t * (x1 - x0), y1))
    for t in np.linspace(0, 1, 200):
        edge.append((x0, y1 - t * (y1 - y0)))
    e = cv2.perspectiveTransform(np.array(edge, np.float64).reshape(-1, 1, 2), hom).reshape(-1, 2)
    # Keep what lies in front of the camera and inside the lens's field (the polynomial is only
    # meaningful there), then distort into sensor pixels.
    r = np.hypot(e[:, 0], e[:, 1])
    e = e[r < 1.2]
    pts3 = np.concatenate([e, np.ones((len(e), 1))], 1)
    img, _ = cv2.projectPoints(pts3, np.zeros(3), np.zeros(3), k, dist)
    return img.reshape(-1, 2).astype(np.float32), int(inliers.sum()), len(pix)


def inside(poly, x, y):
    return cv2.pointPolygonTest(poly.reshape(-1, 1, 2), (float(x), float(y)), False) >= 0


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter + 1e-9)


class Source:
    """A labelled video: where it is, which frames, how its labels are split, its outline."""

    def __init__(self, name, video, frames, outline, every, describe):
        self.name, self.video, self.frames, self.every = name, video, frames, every
        self.outline, self.describe = outline, describe

    def part(self, frame):
        # The SoccerTrack frames split by time; other videos only ever give figures.
        return part_of(frame) if self.outline is not None else "figures"


def sources(args):
    shared = Path(args.shared)
    found = [
        Source(camera, shared / f"{camera}_camera.mp4", LABELLED,
               (lambda c=camera: pitch_outline(c, shared)), 12, f"SoccerTrack {camera} camera")
        for camera in CAMERAS
    ]
    # vtest.avi (Debian opencv-doc): 795 pictures at 10 fps; every 40th, 20 in all.
    found.append(Source("vtest", Path(args.vtest), [1 + 40 * k for k in range(20)], None, 40,
                        "vtest.avi (Debian opencv-doc 4.6.0), people walking"))
    wanted = None if args.only is None else set(args.only.split(","))
    unknown = (wanted or set()) - {s.name for s in found}
    if unknown:
        raise SystemExit(f"--only: unknown source(s) {sorted(unknown)}; known: left, right, vtest")
    return [s for s in found if wanted is None or s.name in wanted]


def median_background(video, step=2):
    """The median picture over every `step`-th picture, at half resolution."""
    cap = cv2.VideoCapture(str(video))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    small, n = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        if n % step == 1:
            small.append(cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    if not small:
        raise SystemExit(f"{video}: no pictures could be read")
    return np.median(np.stack(small), axis=0).astype(np.uint8), (w, h)


def draft(args):
    sys.path.insert(0, str(ROOT / "models"))
    import footandball
    import onnxruntime as ort

    weights = footandball.folded(footandball.load_state_dict(
        Path(args.shared).parent / "footandball" / "model_20201019_1416_final.pth"))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sources(args):
        background, (w, h) = median_background(src.video)
        frames = read_frames(src.video, src.frames)
        ph, pw = h // 32 * 32, w // 32 * 32
        sess = ort.InferenceSession(footandball.build(weights, pw, 12.0, height=ph).SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        if src.outline is not None:
            poly, used, clicked = src.outline()
            on_pitch = lambda x, y: inside(poly, x, y)  # noqa: E731
            origin = f"pitch outline from {used} of {clicked} landmarks"
        else:
            on_pitch = lambda x, y: True  # noqa: E731
            origin = "no pitch outline"
        rows = []
        for fr, bgr in frames.items():
            rgb = cv2.cvtColor(bgr[:ph, :pw], cv2.COLOR_BGR2RGB).astype(np.float32) / 255
            o = sess.run(None, {"images": rgb.transpose(2, 0, 1)[None]})[0][0]
            people = []
            for i in np.argsort(-o[4]):
                if o[4, i] < args.person_score:
                    break
                cx, cy, bw, bh = o[:4, i]
                box = (cx - bw / 2, cy - bh / 2, bw, bh)
                if all(iou(box, p) < 0.3 for p in people):
                    people.append(box)
            balls = []
            for i in np.argsort(-o[5]):
                if o[5, i] < args.ball_score or len(balls) >= 3:
                    break
                balls.append(tuple(o[:4, i]))
            for box in people:
                x, y, bw, bh = box
                rows.append((fr, -1, x, y, bw, bh, 1, 1, 1 if on_pitch(x + bw / 2, y + bh) else 0))
            for cx, cy, bw, bh in balls:
                rows.append((fr, -1, cx - 6, cy - 6, 12, 12, 1, 4, 1 if on_pitch(cx, cy) else 0))
            # Moving things no detection covers.
            cur = cv2.resize(bgr, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            diff = cv2.absdiff(cur, background).astype(np.int16).sum(axis=2)
            mask = (diff > 60).astype(np.uint8)
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
            mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            for st in stats[1:count]:
                x, y, bw, bh, area = (float(v) for v in st)
                x, y, bw, bh = 2 * x, 2 * y, 2 * bw, 2 * bh
                if area < 12 or bh < 16 or bh > 400 or bw > 300:
                    continue
                cx, cy = x + bw / 2, y + bh / 2
                if any(px <= cx <= px + pw_ and py <= cy <= py + ph_ for px, py, pw_, ph_ in people):
                    continue
                if not on_pitch(cx, y + bh):
                    continue
                rows.append((fr, -2, x, y, bw, bh, 1, 1, 1))
        header = [
            f"{src.describe}, {w}x{h}, frames {src.frames[0]}-{src.frames[-1]} every {src.every}th (1-based).",
            "frame,id,x,y,w,h,conf,class,visibility: class 1 person (player, goalkeeper, referee), 4 ball;",
            "visibility 0 = don't-care (off the pitch)."
            + (" Frames 1-150 (first 6 s): tune; 151-250: figures." if src.outline else " Figures only."),
            f"Drafted by scripts/real-labels.py draft ({origin}).",
        ]
        write_labels(out_dir / f"{src.name}.txt", rows, header)
        blobs = sum(1 for r in rows if r[1] == -2)
        print(f"{src.name}: {len(rows)} boxes in {len(frames)} frames ({blobs} background blobs to check)")


COLOURS = {"person": (0, 220, 0), "ignore": (160, 160, 160), "ball": (255, 0, 255), "blob": (0, 230, 255)}


def review(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for src in sources(args):
        rows = read_labels(Path(args.labels) / f"{src.name}.txt")
        frames = read_frames(src.video, sorted({r[0] for r in rows} | set(src.frames)))
        poly = src.outline()[0] if src.outline is not None else None
        for fr, img in frames.items():
            img = img.copy()
            if poly is not None:
                cv2.polylines(img, [poly.astype(np.int32).reshape(-1, 1, 2)], True, (255, 128, 0), 2)
            for r in (r for r in rows if r[0] == fr):
                _, tid, x, y, w, h, _, cls, vis = r
                kind = "ball" if cls == 4 else "blob" if tid == -2 else "person" if vis > 0 else "ignore"
                cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), COLOURS[kind], 2)
            h, w = img.shape[:2]
            if w <= 1024:
                cv2.imwrite(str(out / f"{src.name}-{fr:06d}.png"), img)
                continue
            for name, crop in (("a", img[:, : w // 2 + 100]), ("b", img[:, w // 2 - 100:])):
                cv2.imwrite(str(out / f"{src.name}-{fr:06d}-{name}.png"), crop[int(h * 0.3):])
        print(f"{src.name}: review images in {out}")


def cut(args):
    out = Path(args.out)
    for src in sources(args):
        if not src.video.exists():
            raise SystemExit(f"{src.name}: {src.video} is missing")
        rows = read_labels(Path(args.labels) / f"{src.name}.txt")
        unchecked = [r for r in rows if r[1] == -2]
        if unchecked:
            raise SystemExit(f"{src.name}: {len(unchecked)} background blobs are not checked yet (id -2)")
        frames = [f for f in src.frames if args.part in ("all", src.part(f))]
        if not frames:
            continue
        clip = out / f"clip-{src.name}-{args.part}"
        clip.mkdir(parents=True, exist_ok=True)
        for fr, img in read_frames(src.video, frames).items():
            cv2.imwrite(str(clip / f"frame-{fr:06d}.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        write_labels(clip / "gt.txt", [r for r in rows if r[0] in frames], [])
        if src.outline is not None:
            poly = src.outline()[0]
            (clip / "pitch.txt").write_text("".join(f"{x:.1f},{y:.1f}\n" for x, y in poly))
        print(f"{clip}: {len(frames)} frames, {sum(1 for r in rows if r[0] in frames)} boxes")


def carry(args):
    """The SoccerTrack labels carried into our stitched panorama of the same instants
    (scripts/real-panorama.py): each box's outline mapped through its camera's lens and
    homographies, the panorama box its bounds. A box counts where its camera supplies the
    panorama (the stitch table's weight at the box's foot point at least 3/4); in the blend band
    (both cameras mixed, a person may show twice) it is don't-care."""
    spec = importlib.util.spec_from_file_location("real_panorama", ROOT / "scripts" / "real-panorama.py")
    pano = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pano)
    src_dir = Path(args.panorama)
    calibration = pano.load_calibration(src_dir / "calibration.json")
    table = pano.read_table(src_dir / "table.pvstitch")
    tw, th = table["size"]
    # The left camera's weight per panorama pixel (alpha: 255 = all left), 0 where only the right
    # covers it.
    covered = {c: table[c] != 0xFFFFFFFF for c in CAMERAS}
    left_weight = np.where(covered["left"] & covered["right"], table["alpha"] / 255.0,
                           np.where(covered["left"], 1.0, 0.0))
    rows = []
    for camera in CAMERAS:
        for fr, tid, x, y, w, h, conf, cls, vis in read_labels(Path(args.labels) / f"{camera}.txt"):
            t = np.linspace(0.0, 1.0, 9)
            outline = np.concatenate([
                np.stack([x + t * w, np.full_like(t, y)], 1), np.stack([x + t * w, np.full_like(t, y + h)], 1),
                np.stack([np.full_like(t, x), y + t * h], 1), np.stack([np.full_like(t, x + w), y + t * h], 1)])
            mapped = pano.camera_to_panorama(camera, outline, calibration)
            if not np.isfinite(mapped).all():
                continue
            (l, tp), (r, b) = mapped.min(0), mapped.max(0)
            if cls == 4:
                cx, cy = (l + r) / 2, (tp + b) / 2
                size = max(4.0, min(12.0, max(r - l, b - tp)))
                l, tp, r, b = cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2
                fx, fy = cx, cy
            else:
                fx, fy = (l + r) / 2, b
            if r < 0 or b < 0 or l >= tw or tp >= th:
                continue
            ix, iy = int(np.clip(fx, 0, tw - 1)), int(np.clip(fy, 0, th - 1))
            if not covered[camera][iy, ix]:
                continue
            own = left_weight[iy, ix] if camera == "left" else 1.0 - left_weight[iy, ix]
            if own < 0.25:
                continue  # the other camera supplies this spot; its own label stands there
            visible = vis if own >= 0.75 else 0
            l, tp, r, b = max(l, 0.0), max(tp, 0.0), min(r, tw - 1.0), min(b, th - 1.0)
            rows.append((fr, tid, l, tp, r - l, b - tp, conf, cls, visible))
    out = Path(args.out)
    for part in ("tune", "figures"):
        if args.part not in ("all", part):
            continue
        frames = [f for f in LABELLED if part_of(f) == part]
        clip = out / f"clip-panorama-{part}"
        clip.mkdir(parents=True, exist_ok=True)
        for f in frames:
            png = src_dir / f"frame-{f:06d}.png"
            if not png.exists():
                raise SystemExit(f"{png}: missing (run scripts/real-panorama.py first)")
            shutil.copy(png, clip / png.name)
        write_labels(clip / "gt.txt", [r for r in rows if r[0] in frames], [])
        # The pitch plus 2 m, through the panorama's own homography.
        pitch_from_image = np.asarray(calibration["panorama"]["pitch_from_image"], np.float64)
        edge = []
        for k in np.linspace(0, 1, 100):
            edge.append((-54.5 + 109 * k, -36.0))
        for k in np.linspace(0, 1, 100):
            edge.append((54.5, -36.0 + 72 * k))
        for k in np.linspace(0, 1, 100):
            edge.append((54.5 - 109 * k, 36.0))
        for k in np.linspace(0, 1, 100):
            edge.append((-54.5, 36.0 - 72 * k))
        poly = pano.apply_h(np.linalg.inv(pitch_from_image), np.array(edge))
        poly = poly[np.isfinite(poly).all(1)]
        (clip / "pitch.txt").write_text("".join(f"{x:.1f},{y:.1f}\n" for x, y in poly))
        print(f"{clip}: {len(frames)} panoramas, {sum(1 for r in rows if r[0] in frames)} boxes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "data" / "real" / "soccertrack"))
    ap.add_argument("--vtest", default="/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    ap.add_argument("--labels", default=str(ROOT / "models" / "real-labels"))
    ap.add_argument("--only", help="some sources, comma-separated: left, right (SoccerTrack), vtest")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("draft")
    d.add_argument("--out", required=True)
    d.add_argument("--person-score", type=float, default=0.4)
    d.add_argument("--ball-score", type=float, default=0.5)
    r = sub.add_parser("review")
    r.add_argument("--out", default=str(ROOT / "target" / "real-review"))
    c = sub.add_parser("cut")
    c.add_argument("--out", required=True)
    c.add_argument("--part", choices=["tune", "figures", "all"], default="all")
    p = sub.add_parser("panorama")
    p.add_argument("--panorama", required=True, help="the folder scripts/real-panorama.py wrote")
    p.add_argument("--out", required=True)
    p.add_argument("--part", choices=["tune", "figures", "all"], default="figures")
    args = ap.parse_args()
    {"draft": draft, "review": review, "cut": cut, "panorama": carry}[args.command](args)


if __name__ == "__main__":
    main()
