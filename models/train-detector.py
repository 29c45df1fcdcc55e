#!/usr/bin/env python3
"""Trains the rig's detector (player, goalkeeper, referee, ball) on stitched panoramas rendered
by the rig simulator (`rig-sim dataset`) and exports it as ONNX in the YOLOv8 layout.

The network is a small fully convolutional centre-point detector (CenterNet-style) with its
output on a stride-4 grid, so a 4-pixel ball still owns a cell:

    stem  3→12 s2 · 12→24 s2 · 24→24            (stride 4, kept for the skip)
    body  24→48 s2 · 48→48 · 48→48 dilated 2    (stride 8, wider context)
    neck  nearest ×2, concat skip, 1×1 →32, 3×3 →24
    head  1×1 → 2 offsets + 2 log sizes + 4 class logits per cell

Training uses random 256×256 crops at native resolution (the daemon's tiles are native-resolution
too), 40 % of them centred on a person and 30 % on the ball (one per panorama: the rarest
object), with flips and brightness and contrast jitter on top of the light and kits the clips
already vary. Loss: CenterNet's focal loss on Gaussian class heatmaps, L1 on sub-cell offsets and
log sizes at the centre cells. Boxes cut by the crop are learnt as their visible part (the daemon
drops cut pieces at tile borders); people less than 25 % visible are neither positives nor
negatives.

The exported graph does the decoding itself: sigmoid scores, 3×3 peak picking (a cell keeps its
score only where it is the local maximum), box centres and sizes in input pixels, output
`[1, 4 + 4, (S/4)²]` like a YOLOv8 export, so the daemon's ordinary YOLO decoder and NMS read it.

Usage (after `rig-sim dataset`; see models/README.md):
    .venv-train/bin/python models/train-detector.py --train DIR --out models/polyvision-det
Everything is seeded; the versions are pinned in models/requirements-train.txt.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from PIL import Image  # noqa: E402

CLASSES = ["player", "goalkeeper", "referee", "ball"]
NC = len(CLASSES)
STRIDE = 4
CROP = 256
MAX_OBJECTS = 96
MIN_VISIBILITY = 0.25


# ---------------------------------------------------------------------------------------------
# Data


def read_clips(root):
    """Panoramas (uint8 H×W×3) and their boxes [x, y, w, h, class 0-3, visibility]."""
    images, boxes = [], []
    for clip in sorted(Path(root).glob("clip-*")):
        rows = {}
        for line in (clip / "gt.txt").read_text().splitlines():
            f = line.split(",")
            if len(f) < 9:
                continue
            frame, cls = int(f[0]), int(f[7])
            if not 1 <= cls <= NC:
                continue
            rows.setdefault(frame, []).append(
                [float(f[2]), float(f[3]), float(f[4]), float(f[5]), cls - 1, float(f[8])]
            )
        for png in sorted(clip.glob("frame-*.png")):
            frame = int(png.stem.split("-")[1])
            images.append(np.asarray(Image.open(png).convert("RGB")))
            boxes.append(np.array(rows.get(frame, []), dtype=np.float32).reshape(-1, 6))
    return images, boxes


def gaussian_radius(w, h):
    """Heatmap σ in cells: a third of the smaller half-side, at least 0.6 cell."""
    return max(0.6, min(w, h) / STRIDE / 6.0)


def make_targets(boxes, x0, y0, flip):
    """Targets of one crop whose top-left is (x0, y0) in the panorama."""
    g = CROP // STRIDE
    heat = np.zeros((g, g, NC), np.float32)
    care = np.ones((g, g), np.float32)
    index = np.zeros(MAX_OBJECTS, np.int32)
    reg = np.zeros((MAX_OBJECTS, 4), np.float32)
    mask = np.zeros(MAX_OBJECTS, np.float32)
    ys, xs = np.mgrid[0:g, 0:g].astype(np.float32)
    n = 0
    for x, y, w, h, cls, vis in boxes:
        l, t = max(x, x0), max(y, y0)
        r, b = min(x + w, x0 + CROP), min(y + h, y0 + CROP)
        if r - l < 1 or b - t < 1:
            continue
        l, t, r, b = l - x0, t - y0, r - x0, b - y0
        if flip:
            l, r = CROP - r, CROP - l
        cut_area = (r - l) * (b - t) / max(w * h, 1e-6)
        if vis < MIN_VISIBILITY or cut_area < 0.3:
            gl, gt = int(l // STRIDE), int(t // STRIDE)
            gr, gb = int(np.ceil(r / STRIDE)), int(np.ceil(b / STRIDE))
            care[gt:gb, gl:gr] = 0.0
            continue
        cx, cy = (l + r) / 2 / STRIDE, (t + b) / 2 / STRIDE
        ix, iy = min(int(cx), g - 1), min(int(cy), g - 1)
        s = gaussian_radius(r - l, b - t)
        blob = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * s * s))
        heat[:, :, int(cls)] = np.maximum(heat[:, :, int(cls)], blob)
        if n < MAX_OBJECTS:
            index[n] = iy * g + ix
            reg[n] = [cx - ix, cy - iy, np.log((r - l) / STRIDE), np.log((b - t) / STRIDE)]
            mask[n] = 1.0
            n += 1
    return heat, care, index, reg, mask


def sample_batch(rng, images, boxes, size):
    xs, heats, cares, idxs, regs, masks = [], [], [], [], [], []
    for _ in range(size):
        k = rng.integers(len(images))
        img, bx = images[k], boxes[k]
        hgt, wid = img.shape[:2]
        mode = rng.random()
        balls = bx[bx[:, 4] == 3] if len(bx) else bx
        if mode < 0.3 and len(balls):
            ref = balls[rng.integers(len(balls))]
        elif mode < 0.7 and len(bx):
            ref = bx[rng.integers(len(bx))]
        else:
            ref = None
        if ref is not None:
            cx, cy = ref[0] + ref[2] / 2, ref[1] + ref[3] / 2
            x0 = int(cx - rng.integers(24, CROP - 24))
            y0 = int(cy - rng.integers(24, CROP - 24))
        else:
            x0, y0 = rng.integers(0, wid - CROP), rng.integers(0, hgt - CROP)
        x0, y0 = int(np.clip(x0, 0, wid - CROP)), int(np.clip(y0, 0, hgt - CROP))
        crop = img[y0 : y0 + CROP, x0 : x0 + CROP].astype(np.float32) / 255.0
        flip = rng.random() < 0.5
        if flip:
            crop = crop[:, ::-1]
        gain = rng.uniform(0.8, 1.2)
        contrast = rng.uniform(0.85, 1.15)
        mean = crop.mean()
        crop = np.clip((crop - mean) * contrast + mean * gain, 0.0, 1.0)
        heat, care, index, reg, mask = make_targets(bx, x0, y0, flip)
        xs.append(crop)
        heats.append(heat)
        cares.append(care)
        idxs.append(index)
        regs.append(reg)
        masks.append(mask)
    return tuple(np.stack(a) for a in (xs, heats, cares, idxs, regs, masks))


# ---------------------------------------------------------------------------------------------
# Network (NHWC while training; exported as NCHW)

# name, input channels, output channels, kernel, stride, dilation
LAYERS = [
    ("c1", 3, 12, 3, 2, 1),
    ("c2", 12, 24, 3, 2, 1),
    ("c3", 24, 24, 3, 1, 1),
    ("c4", 24, 48, 3, 2, 1),
    ("c5", 48, 48, 3, 1, 1),
    ("c6", 48, 48, 3, 1, 2),
    ("c7", 72, 32, 1, 1, 1),
    ("c8", 32, 24, 3, 1, 1),
    ("head", 24, 4 + NC, 1, 1, 1),
]


def init_params(key):
    params = {}
    for name, cin, cout, k, _, _ in LAYERS:
        key, sub = jax.random.split(key)
        std = np.sqrt(2.0 / (cin * k * k))
        w = jax.random.normal(sub, (k, k, cin, cout)) * std
        b = jnp.zeros(cout)
        if name == "head":
            w = w * 0.1
            # Scores start near 0.01 so the focal loss does not drown in easy negatives.
            b = b.at[4:].set(-4.6)
        params[name] = (w, b)
    return params


def conv(params, name, x):
    spec = {n: (k, s, d) for n, _, _, k, s, d in LAYERS}[name]
    k, s, d = spec
    w, b = params[name]
    pad = d * (k // 2)
    y = jax.lax.conv_general_dilated(
        x, w, (s, s), [(pad, pad), (pad, pad)], rhs_dilation=(d, d),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return y + b


def forward(params, x):
    relu = jax.nn.relu
    a = relu(conv(params, "c1", x))
    a = relu(conv(params, "c2", a))
    skip = relu(conv(params, "c3", a))
    a = relu(conv(params, "c4", skip))
    a = relu(conv(params, "c5", a))
    a = relu(conv(params, "c6", a))
    a = jnp.repeat(jnp.repeat(a, 2, axis=1), 2, axis=2)
    a = jnp.concatenate([a, skip], axis=-1)
    a = relu(conv(params, "c7", a))
    a = relu(conv(params, "c8", a))
    return conv(params, "head", a)


def loss_fn(params, batch):
    x, heat, care, index, reg, mask = batch
    out = forward(params, x)
    n, g = out.shape[0], out.shape[1]
    logits = out[..., 4:]
    p = jnp.clip(jax.nn.sigmoid(logits), 1e-4, 1 - 1e-4)
    pos = (heat > 0.999).astype(jnp.float32)
    neg = (1 - pos) * care[..., None]
    pos_loss = -jnp.log(p) * (1 - p) ** 2 * pos
    neg_loss = -jnp.log(1 - p) * p**2 * (1 - heat) ** 4 * neg
    npos = jnp.maximum(pos.sum(), 1.0)
    focal = (pos_loss.sum() + neg_loss.sum()) / npos
    flat = out[..., :4].reshape(n, g * g, 4)
    picked = jnp.take_along_axis(flat, index[..., None], axis=1)
    pred = jnp.concatenate([jax.nn.sigmoid(picked[..., :2]), picked[..., 2:]], axis=-1)
    l1 = (jnp.abs(pred - reg) * mask[..., None]).sum() / jnp.maximum(mask.sum(), 1.0)
    return focal + l1, (focal, l1)


# ---------------------------------------------------------------------------------------------
# ONNX export


def export_onnx(params, size, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = size // STRIDE
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def conv_node(name, x):
        _, cin, cout, k, s, d = next(layer for layer in LAYERS if layer[0] == name)
        w, b = (np.asarray(t, np.float32) for t in params[name])
        const(name + ".w", w.transpose(3, 2, 0, 1))
        const(name + ".b", b)
        pad = d * (k // 2)
        nodes.append(
            helper.make_node(
                "Conv", [x, name + ".w", name + ".b"], [name], kernel_shape=[k, k],
                strides=[s, s], dilations=[d, d], pads=[pad, pad, pad, pad],
            )
        )
        return name

    def relu(x):
        nodes.append(helper.make_node("Relu", [x], [x + ".r"]))
        return x + ".r"

    a = relu(conv_node("c1", "images"))
    a = relu(conv_node("c2", a))
    skip = relu(conv_node("c3", a))
    a = relu(conv_node("c4", skip))
    a = relu(conv_node("c5", a))
    a = relu(conv_node("c6", a))
    const("up.scales", np.array([1, 1, 2, 2], np.float32))
    nodes.append(helper.make_node("Resize", [a, "", "up.scales"], ["up"], mode="nearest",
                                  coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    nodes.append(helper.make_node("Concat", ["up", skip], ["cat"], axis=1))
    a = relu(conv_node("c7", "cat"))
    a = relu(conv_node("c8", a))
    head = conv_node("head", a)
    # Split: offsets (2), log sizes (2), class logits (NC).
    const("split", np.array([2, 2, NC], np.int64))
    nodes.append(helper.make_node("Split", [head, "split"], ["off", "logsize", "logits"], axis=1))
    nodes.append(helper.make_node("Sigmoid", ["off"], ["off.s"]))
    grid = np.stack(np.meshgrid(np.arange(g), np.arange(g)), 0).astype(np.float32)
    const("grid", grid[None])  # [1, 2, g, g]: x then y
    const("stride", np.array(STRIDE, np.float32))
    nodes.append(helper.make_node("Add", ["off.s", "grid"], ["centre.cells"]))
    nodes.append(helper.make_node("Mul", ["centre.cells", "stride"], ["centre"]))
    nodes.append(helper.make_node("Exp", ["logsize"], ["size.cells"]))
    nodes.append(helper.make_node("Mul", ["size.cells", "stride"], ["size"]))
    nodes.append(helper.make_node("Sigmoid", ["logits"], ["prob"]))
    nodes.append(
        helper.make_node("MaxPool", ["prob"], ["prob.max"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    )
    nodes.append(helper.make_node("Equal", ["prob", "prob.max"], ["peak.b"]))
    nodes.append(helper.make_node("Cast", ["peak.b"], ["peak"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Mul", ["prob", "peak"], ["scores"]))
    nodes.append(helper.make_node("Concat", ["centre", "size", "scores"], ["grid.out"], axis=1))
    # 0 copies the batch dimension, -1 flattens the grid.
    const("out.shape", np.array([0, 4 + NC, -1], np.int64))
    nodes.append(helper.make_node("Reshape", ["grid.out", "out.shape"], ["output0"]))
    graph = helper.make_graph(
        nodes,
        "polyvision-det",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + NC, g * g])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="polyvision"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="folder written by `rig-sim dataset`")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--input-size", type=int, default=512, help="square input of the export")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export-only", metavar="WEIGHTS",
                    help="skip training: export these saved weights (.weights.npz)")
    args = ap.parse_args()

    if args.export_only:
        w = np.load(args.export_only)
        params = {n: (w[f"{n}.0"], w[f"{n}.1"]) for n, *_ in LAYERS}
        export_onnx(params, args.input_size, str(Path(args.out).with_suffix(".onnx")))
        print(f"exported {Path(args.out).with_suffix('.onnx')}")
        return

    started = time.time()
    images, boxes = read_clips(args.train)
    if not images:
        raise SystemExit(f"no panoramas under {args.train} (expected clip-*/frame-*.png)")
    print(f"train: {len(images)} panoramas, {sum(len(b) for b in boxes)} boxes "
          f"({time.time() - started:.0f} s to read)", flush=True)
    rng = np.random.default_rng(args.seed)
    params = init_params(jax.random.PRNGKey(args.seed))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, args.lr, min(100, args.steps // 4), args.steps, args.lr * 0.02
    )
    opt = optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule, weight_decay=1e-4))
    state = opt.init(params)

    @jax.jit
    def step(params, state, batch):
        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, parts

    t0 = time.time()
    for i in range(1, args.steps + 1):
        batch = sample_batch(rng, images, boxes, args.batch)
        params, state, loss, (focal, l1) = step(params, state, batch)
        if i % 100 == 0 or i == 1:
            rate = i / (time.time() - t0)
            print(f"step {i:5d}  loss {float(loss):.3f}  focal {float(focal):.3f}  "
                  f"box {float(l1):.3f}  {rate:.2f} steps/s", flush=True)
    train_s = time.time() - t0

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.with_suffix(".weights.npz"),
             **{f"{k}.{j}": np.asarray(v[j]) for k, v in params.items() for j in range(2)})
    export_onnx(params, args.input_size, str(out.with_suffix(".onnx")))
    info = {
        "steps": args.steps, "batch": args.batch, "crop": CROP, "lr": args.lr,
        "seed": args.seed, "train_panoramas": len(images), "train_seconds": round(train_s),
        "jax": jax.__version__, "optax": optax.__version__,
    }
    Path(str(out) + ".training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"exported {out.with_suffix('.onnx')} after {train_s:.0f} s of training", flush=True)


if __name__ == "__main__":
    main()
