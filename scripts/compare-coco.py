#!/usr/bin/env python3
"""Cross-check our detection evaluator against pycocotools' COCOeval on the same files.

`polyvision-edge detect-eval --coco DIR` writes the truth (`truth.json`, people less than a
quarter visible as crowd regions), the detections (`detections.json`) and its own average
precision per class (`scores.json`). This script runs COCOeval (bbox, area "all", 100
detections per image) on the first two and compares AP@0.5 and AP@0.5:0.95 per class with the
third. Exits 1 when any figure differs by more than 1e-6.

Usage: .venv/bin/python scripts/compare-coco.py DIR
"""

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    ours = json.loads((folder / "scores.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(folder / "truth.json"))
        dets = truth.loadRes(str(folder / "detections.json"))
        ev = COCOeval(truth, dets, "bbox")
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"]  # [IoU, recall, class, area, max detections]
    worst = 0.0
    print(f"{'class':<11} {'AP@0.5 ours':>12} {'pycocotools':>12} {'AP@.5:.95 ours':>15} {'pycocotools':>12}")
    for row in ours:
        k = ev.params.catIds.index(row["category_id"])
        p = precision[:, :, k, 0, -1]
        if (p[0] > -1).any():
            theirs50 = float(np.mean(p[0][p[0] > -1]))
            theirs = float(np.mean(p[p > -1]))
        else:
            theirs50 = theirs = None
        for a, b in ((row["ap50"], theirs50), (row["ap50_95"], theirs)):
            if (a is None) != (b is None):
                worst = float("inf")
            elif a is not None:
                worst = max(worst, abs(a - b))
        fmt = lambda v: "–" if v is None else f"{v:.6f}"  # noqa: E731
        print(f"{row['name']:<11} {fmt(row['ap50']):>12} {fmt(theirs50):>12} "
              f"{fmt(row['ap50_95']):>15} {fmt(theirs):>12}")
    print(f"largest difference: {worst:.2e}")
    ok = worst <= 1e-6
    print("compare-coco: ok" if ok else "compare-coco: failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
