#!/usr/bin/env python3
"""Fine-tunes FootAndBall (models/footandball.py) on real and rendered frames and exports the
rig's detector: people (player, goalkeeper, referee) and the ball.

Start: the published FootAndBall weights (trained on real stadium footage, ISSIA-CNR and
bmvc17), so what they learnt of real people and real grass is the starting point rather than
something to rediscover from two real clips. The player classifier grows from two outputs
(background, player) to four (background, player, goalkeeper, referee); the new outputs start as
copies of "player" a little behind it.

Data, mixed half and half in every batch:
- real: frames with reviewed boxes (`scripts/real-labels.py cut --part tune`: the first 6 s of
  the SoccerTrack rig only). Their boxes say "person", not which kind, so a real person cell is
  trained on the probability of any person kind (one minus background); don't-care regions
  (off the pitch) train nothing.
- rendered: panoramas of the rig simulator (`rig-sim dataset`) with all four classes, so the
  rendered clips the suite scores stay good and goalkeepers and referees are told apart there.
Random 256×256 crops, real ones rescaled by 0.35–1.2 (other rigs see players smaller than this
near camera does), rendered ones by 0.8–1.25; flips; brightness, contrast and per-channel gain.

Loss as the FootAndBall paper: cross-entropy on the stride-16 person map and the stride-4 ball
map (3×3 cells around each centre positive), hard negatives at three per positive, smooth L1 on
the person boxes (in the network's own units: fractions of a 1280×720 crop).

Usage: .venv-train/bin/python models/train-footandball.py --real DIR --rendered DIR \
         --weights ../shared/data/real/footandball/model_20201019_1416_final.pth --out models/polyvision-det-real
Everything is seeded; versions in models/requirements-train.txt.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import onnx  # noqa: E402
from PIL import Image  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import footandball as fb  # noqa: E402


CROP = 256
KINDS = 3  # player, goalkeeper, referee
TRAINED = np.array([1280.0, 720.0], np.float32)  # the regressor's units (see footandball.py)
NEG_PER_POS = 3
MIN_VISIBILITY = 0.25


# ---------------------------------------------------------------------------------------------
# Network (NHWC)


def to_training(params):
    """Folded OIHW convolutions to HWIO, the player classifier grown to 1 + KINDS outputs."""
    out = {k: (jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(b)) for k, (w, b) in params.items()}
    w, b = out["player_classifier.2"]
    w = jnp.concatenate([w[..., :1]] + [w[..., 1:2]] * KINDS, axis=-1)
    b = jnp.concatenate([b[:1], b[1:2], b[1:2] - 1.0, b[1:2] - 1.0])
    out["player_classifier.2"] = (w, b)
    return out


def to_export(params):
    return {k: (np.asarray(w).transpose(3, 2, 0, 1).astype(np.float32), np.asarray(b, np.float32))
            for k, (w, b) in params.items()}


def conv(p, x, relu=True):
    w, b = p
    pad = w.shape[0] // 2
    y = jax.lax.conv_general_dilated(x, w, (1, 1), [(pad, pad), (pad, pad)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + b
    return jax.nn.relu(y) if relu else y


def pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def up2(x):
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear")


def forward(params, x):
    x = (x - fb.MEAN) / fb.STD
    levels = []
    for block in fb.BLOCKS:
        for name in block:
            x = conv(params[name], x)
        x = pool(x)
        levels.append(x)
    lat = [conv(params[f"base_network.lateral_layers.{i - 1}"], levels[i], relu=False) for i in range(1, 5)]
    top = lat[3]
    pyramid = [top]
    for lv in (lat[2], lat[1], lat[0]):
        top = up2(top) + lv
        pyramid.append(top)
    ball_feat, player_feat = pyramid[3], pyramid[1]

    def head(name, f):
        return conv(params[f"{name}.2"], conv(params[f"{name}.0"], f), relu=False)

    return head("player_classifier", player_feat), head("player_regressor", player_feat), head("ball_classifier", ball_feat)


def mined(neg_loss, neg_mask, npos):
    """Sum of the hardest negatives, NEG_PER_POS per positive (at least 16)."""
    flat = jnp.where(neg_mask > 0, neg_loss, -1.0).reshape(-1)
    ranked = -jnp.sort(-flat)
    keep = jnp.arange(ranked.size) < jnp.maximum(NEG_PER_POS * npos, 16.0)
    return jnp.sum(jnp.where(keep & (ranked >= 0), ranked, 0.0))


def loss_fn(params, batch):
    x, p_cls, p_any, p_box, b_cls = batch
    logits, reg, b_logits = forward(params, x)
    # People: p_cls −1 don't-care, 0 background, 1..KINDS a kind; p_any 1 where only "a person".
    logp = jax.nn.log_softmax(logits, axis=-1)
    kind_ll = jnp.take_along_axis(logp, jnp.clip(p_cls, 0, KINDS)[..., None], axis=-1)[..., 0]
    any_ll = jax.nn.logsumexp(logp[..., 1:], axis=-1)
    pos = (p_cls > 0).astype(jnp.float32)
    pos_loss = -jnp.where(p_any > 0, any_ll, kind_ll) * pos
    npos = jnp.maximum(pos.sum(), 1.0)
    neg = (p_cls == 0).astype(jnp.float32)
    person = (pos_loss.sum() + mined(-logp[..., 0], neg, pos.sum())) / npos
    # Boxes, in cells of the person map.
    units = TRAINED / 16.0
    diff = (reg - p_box) * jnp.concatenate([units, units])
    ad = jnp.abs(diff)
    box = (jnp.where(ad < 1, 0.5 * ad * ad, ad - 0.5).sum(-1) * pos).sum() / npos
    # The ball.
    blogp = jax.nn.log_softmax(b_logits, axis=-1)
    bpos = (b_cls == 1).astype(jnp.float32)
    bneg = (b_cls == 0).astype(jnp.float32)
    nb = jnp.maximum(bpos.sum(), 1.0)
    ball = (-(blogp[..., 1] * bpos).sum() + mined(-blogp[..., 0], bneg, bpos.sum())) / nb
    return person + box + ball, (person, box, ball)


# ---------------------------------------------------------------------------------------------
# Data


# The rendered and real clips share `rig-sim dataset`'s layout; the default detector's
# training already reads it.
_spec = importlib.util.spec_from_file_location("train_detector", HERE / "train-detector.py")
_train_detector = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_detector)
read_clips = _train_detector.read_clips


def targets(boxes, real):
    """Targets of one crop from its boxes [x, y, w, h, class 0-3, visibility] in crop pixels."""
    gp, gb = CROP // fb.PLAYER_STRIDE, CROP // fb.BALL_STRIDE
    p_cls = np.zeros((gp, gp), np.int32)
    p_any = np.zeros((gp, gp), np.float32)
    p_box = np.zeros((gp, gp, 4), np.float32)
    b_cls = np.zeros((gb, gb), np.int32)

    def cells(l, t, r, b, stride, g):
        return (max(0, int(l // stride)), max(0, int(t // stride)),
                min(g, int(np.ceil(r / stride))), min(g, int(np.ceil(b / stride))))

    # Boxes clipped to the crop: kept (visible enough, not cut to less than half) or don't-care.
    kept, ignored = [], []
    for x, y, w, h, cls, vis in boxes:
        l, t, r, b = max(x, 0), max(y, 0), min(x + w, CROP), min(y + h, CROP)
        if r - l < 1 or b - t < 1:
            continue
        cut = (r - l) * (b - t) / max(w * h, 1e-6)
        (ignored if vis < MIN_VISIBILITY or cut < 0.5 else kept).append((x, y, w, h, cls, l, t, r, b))
    # Don't-care first, so a real object inside a don't-care region still counts.
    for *_, cls, l, t, r, b in ignored:
        if cls == 3:
            x0, y0, x1, y1 = cells(l - 4, t - 4, r + 4, b + 4, fb.BALL_STRIDE, gb)
            b_cls[y0:y1, x0:x1] = -1
        else:
            x0, y0, x1, y1 = cells(l, t, r, b, fb.PLAYER_STRIDE, gp)
            p_cls[y0:y1, x0:x1] = np.where(p_cls[y0:y1, x0:x1] > 0, p_cls[y0:y1, x0:x1], -1)
    for x, y, w, h, cls, *_ in kept:
        cx, cy = x + w / 2, y + h / 2
        if cls == 3:
            ix, iy = int(cx // fb.BALL_STRIDE), int(cy // fb.BALL_STRIDE)
            b_cls[max(0, iy - 1):iy + 2, max(0, ix - 1):ix + 2] = 1
            continue
        ix, iy = int(cx // fb.PLAYER_STRIDE), int(cy // fb.PLAYER_STRIDE)
        if not (0 <= ix < gp and 0 <= iy < gp):
            continue
        for j in range(max(0, iy - 1), min(gp, iy + 2)):
            for i in range(max(0, ix - 1), min(gp, ix + 2)):
                p_cls[j, i] = int(cls) + 1
                p_any[j, i] = 1.0 if real else 0.0
                ccx, ccy = i * 16 + 7.5, j * 16 + 7.5
                p_box[j, i] = [(cx - ccx) / TRAINED[0], (cy - ccy) / TRAINED[1], w / TRAINED[0], h / TRAINED[1]]
    return p_cls, p_any, p_box, b_cls


# Rescaling per source: the rig's cameras (people from 30 to 200 pixels tall) shrunk to what
# other rigs and our panorama see; our panorama and the rendered ones kept near native size.
SCALES = {"camera": (0.35, 1.2), "panorama": (0.8, 1.3), "rendered": (0.8, 1.25)}


def sample(rng, img, bx, source):
    hgt, wid = img.shape[:2]
    real = source != "rendered"
    s = rng.uniform(*SCALES[source])
    side = CROP / s
    live = bx[bx[:, 5] >= MIN_VISIBILITY] if len(bx) else bx
    balls = live[live[:, 4] == 3] if len(live) else live
    mode = rng.random()
    ref = None
    if mode < 0.3 and len(balls):
        ref = balls[rng.integers(len(balls))]
    elif mode < 0.8 and len(live):
        ref = live[rng.integers(len(live))]
    if ref is not None:
        cx, cy = ref[0] + ref[2] / 2, ref[1] + ref[3] / 2
        x0 = cx - rng.uniform(0.1, 0.9) * side
        y0 = cy - rng.uniform(0.1, 0.9) * side
    else:
        x0, y0 = rng.uniform(0, max(1, wid - side)), rng.uniform(0, max(1, hgt - side))
    x0 = float(np.clip(x0, 0, max(0, wid - side)))
    y0 = float(np.clip(y0, 0, max(0, hgt - side)))
    box = (int(x0), int(y0), int(min(wid, x0 + side)), int(min(hgt, y0 + side)))
    crop = Image.fromarray(img).crop(box).resize((CROP, CROP), Image.BILINEAR)
    crop = np.asarray(crop, np.float32) / 255.0
    sx, sy = CROP / (box[2] - box[0]), CROP / (box[3] - box[1])
    b = bx.copy()
    if len(b):
        b[:, 0] = (b[:, 0] - box[0]) * sx
        b[:, 1] = (b[:, 1] - box[1]) * sy
        b[:, 2] *= sx
        b[:, 3] *= sy
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
        if len(b):
            b[:, 0] = CROP - b[:, 0] - b[:, 2]
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.92, 1.08, size=3)
    contrast = rng.uniform(0.8, 1.2)
    mean = crop.mean()
    crop = np.clip((crop - mean) * contrast + mean * gain, 0.0, 1.0)
    return (crop,) + targets(b, real)


def batches(rng, sets, size):
    """Batches of `size` crops: a quarter from the real cameras, a quarter from our real
    panorama (the cameras again without one), half rendered."""
    order = ["camera", "panorama" if "panorama" in sets else "camera", "rendered", "rendered"]
    while True:
        parts = []
        for k in range(size):
            source = order[k % 4]
            images, boxes = sets[source]
            i = rng.integers(len(images))
            parts.append(sample(rng, images[i], boxes[i], source))
        yield tuple(np.stack(a) for a in zip(*parts))


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", help="real frames: `scripts/real-labels.py cut --part tune`")
    ap.add_argument("--rendered", help="folder written by `rig-sim dataset`")
    ap.add_argument("--real-panorama", help="our panorama of the real rig, labelled: `scripts/real-labels.py panorama --part tune`")
    ap.add_argument("--weights", help="the FootAndBall state dict (.pth)")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--input-size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ball-box", type=float, default=12.0)
    ap.add_argument("--name", default="polyvision-det-real 1 (FootAndBall fine-tuned on real and rendered frames)")
    ap.add_argument("--person-score", type=float, default=0.5, help="the card's operating score for people")
    ap.add_argument("--ball-score", type=float, default=0.5, help="the card's operating score for the ball")
    ap.add_argument("--export-only", metavar="WEIGHTS", help="skip training: export saved weights (.weights.npz)")
    args = ap.parse_args()

    if args.export_only:
        w = np.load(args.export_only)
        exported = {k.split("|")[0]: (w[k.split("|")[0] + "|0"], w[k.split("|")[0] + "|1"]) for k in w.files}
        export(args, exported, None)
        return
    missing = [f"--{n}" for n in ("real", "rendered", "weights") if getattr(args, n) is None]
    if missing:
        raise SystemExit(f"training needs {', '.join(missing)}")
    started = time.time()
    sets = {"camera": read_clips(args.real), "rendered": read_clips(args.rendered)}
    if args.real_panorama:
        sets["panorama"] = read_clips(args.real_panorama)
    for name, (images, boxes) in sets.items():
        if not images:
            raise SystemExit(f"{name}: no frames (expected clip-*/frame-*.png with gt.txt)")
        print(f"train: {name}: {len(images)} frames, {sum(len(b) for b in boxes)} boxes", flush=True)
    print(f"train: {time.time() - started:.0f} s to read", flush=True)
    params = to_training(fb.folded(fb.load_state_dict(args.weights)))
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(100, args.steps // 5), args.steps,
                                                  args.lr * 0.05)
    opt = optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule, weight_decay=1e-4))
    state = opt.init(params)

    @jax.jit
    def step(params, state, batch):
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, parts

    rng = np.random.default_rng(args.seed)
    feed = batches(rng, sets, args.batch)
    t0 = time.time()
    for i in range(1, args.steps + 1):
        params, state, loss, (person, box, ball) = step(params, state, next(feed))
        if i % 50 == 0 or i == 1:
            print(f"step {i:5d}  loss {float(loss):.3f}  people {float(person):.3f}  box {float(box):.3f}  "
                  f"ball {float(ball):.3f}  {i / (time.time() - t0):.2f} steps/s", flush=True)
    train_s = time.time() - t0

    exported = to_export(params)
    info = {
        "start": "FootAndBall model_20201019_1416_final.pth (jac99/FootAndBall, MIT)",
        "steps": args.steps, "batch": args.batch, "crop": CROP, "lr": args.lr, "seed": args.seed,
        "frames": {name: len(images) for name, (images, _) in sets.items()},
        "train_seconds": round(train_s), "jax": jax.__version__, "optax": optax.__version__,
    }
    export(args, exported, info)


def export(args, exported, info):
    """Writes X.onnx, X.card.json, X.weights.npz and (after training) X.training.json."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(str(out) + ".weights.npz", **{f"{k}|{j}": v[j] for k, v in exported.items() for j in range(2)})
    onnx.save(fb.build(exported, args.input_size, args.ball_box, person_classes=KINDS), str(out) + ".onnx")
    macs = fb.macs_per_tile(exported, args.input_size)
    if info is not None:
        Path(str(out) + ".training.json").write_text(json.dumps(info, indent=2) + "\n")
    card = {
        "name": args.name,
        "input_size": args.input_size,
        "classes": ["player", "goalkeeper", "referee", "ball"],
        "min_scores": {"player": args.person_score, "goalkeeper": args.person_score,
                       "referee": args.person_score, "ball": args.ball_score},
        "notes": "FootAndBall layers (models/footandball.py) from the published weights, fine-tuned on the "
                 "first 6 s of the real SoccerTrack rig and on rendered panoramas; see models/README.md.",
        "gmacs_per_tile": round(macs / 1e9, 3),
    }
    Path(str(out) + ".card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"exported {out}.onnx ({macs / 1e9:.2f} GMAC per {args.input_size}² tile)", flush=True)


if __name__ == "__main__":
    main()
