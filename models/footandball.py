#!/usr/bin/env python3
"""FootAndBall (Komorowski et al., VISAPP 2020) as an ONNX detector in the rig's YOLO layout.

Our own definition of the network's layers, written from the paper's Table 1 and the upstream
state dict's tensor names; the trained weights are read straight from the PyTorch file (a zip
of pickled storages) without PyTorch. Batch norms are folded into their convolutions.

The network (3×3 convolutions unless said, each followed by ReLU):
  stem     16                      then 2×2 max pool   (stride 2)
  block 1  32, 32                  then pool           (stride 4)
  block 2  32, 32                  then pool           (stride 8)
  block 3  64, 64                  then pool           (stride 16)
  block 4  64, 64                  then pool           (stride 32)
  a feature pyramid: 1×1 laterals to 32 channels on blocks 1–4, top-down by bilinear ×2
  upsampling and addition; level 1 (stride 4) feeds the ball head, level 3 (stride 16) the
  player head and the player box regressor (each: 3×3 conv 32, ReLU, 3×3 conv to 2 or 4).
Heads give two-way logits (background, object); the box regressor gives the box centre's offset
from the cell centre and the box width and height, all as fractions of the input side.

The export decodes in the graph, so the daemon reads it like any YOLOv8 export: output
`[N, 6, cells]`, for each cell of the stride-16 player grid and then the stride-4 ball grid the
box centre x, y, width, height in input pixels and the player and ball scores (softmax of the
head, kept only where it is the 3×3 local maximum, else 0). The ball gets a fixed box
(`--ball-box`, pixels), since the network finds only its centre.

Usage: footandball.py --weights ../shared/data/real/footandball/model_20201019_1416_final.pth \
         --out models/footandball [--size 512]
"""

import argparse
import json
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BN_EPS = 1e-5
# The input normalisation the network was trained with (ImageNet statistics, RGB).
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
# The convolutions of the bottom-up path, as (name in the state dict, channels out), by block.
BLOCKS = [
    ["base_network.layers.0.0"],
    ["base_network.layers.1.0", "base_network.layers.1.3"],
    ["base_network.layers.2.0", "base_network.layers.2.3"],
    ["base_network.layers.3.0", "base_network.layers.3.3"],
    ["base_network.layers.4.0", "base_network.layers.4.3"],
]
PLAYER_STRIDE, BALL_STRIDE = 16, 4


def load_state_dict(path):
    """A PyTorch zip checkpoint's tensors as numpy arrays, without PyTorch."""
    archive = zipfile.ZipFile(path)
    prefix = archive.namelist()[0].split("/")[0]
    dtypes = {
        "FloatStorage": np.float32,
        "DoubleStorage": np.float64,
        "HalfStorage": np.float16,
        "LongStorage": np.int64,
        "IntStorage": np.int32,
    }

    class StorageType:
        def __init__(self, name):
            self.dtype = dtypes[name]

    def rebuild_tensor(storage, offset, size, stride, *_):
        itemsize = storage.itemsize
        return np.lib.stride_tricks.as_strided(
            storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
        ).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor
            if module == "torch" and name in dtypes:
                return StorageType(name)
            if module == "collections" and name == "OrderedDict":
                return OrderedDict
            raise pickle.UnpicklingError(f"{path}: unexpected object {module}.{name}")

        def persistent_load(self, pid):
            _, storage_type, key, _, _ = pid
            raw = archive.read(f"{prefix}/data/{key}")
            return np.frombuffer(raw, dtype=storage_type.dtype)

    with archive.open(f"{prefix}/data.pkl") as f:
        return Unpickler(f).load()


def folded_conv(sd, name, bn=None):
    """Weight and bias of a convolution, with the following batch norm folded in."""
    w = sd[name + ".weight"].astype(np.float32)
    b = sd.get(name + ".bias")
    b = np.zeros(w.shape[0], np.float32) if b is None else b.astype(np.float32)
    if bn is not None:
        gamma, beta = sd[bn + ".weight"], sd[bn + ".bias"]
        mean, var = sd[bn + ".running_mean"], sd[bn + ".running_var"]
        scale = gamma / np.sqrt(var + BN_EPS)
        w = w * scale[:, None, None, None]
        b = (b - mean) * scale + beta
    return w.astype(np.float32), b.astype(np.float32)


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, value, base="c"):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(self, kind, inputs, base=None, **attrs):
        out = self.name(base or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x, w, b, relu=True):
        k = w.shape[-1]
        y = self.op("Conv", [x, self.const(w, "w"), self.const(b, "b")], kernel_shape=[k, k],
                    pads=[k // 2] * 4)
        return self.op("Relu", [y]) if relu else y


CONVS = [name for block in BLOCKS for name in block] + [
    f"base_network.lateral_layers.{i}" for i in range(4)] + [
    f"{head}.{k}" for head in ("ball_classifier", "player_classifier", "player_regressor") for k in (0, 2)]


def batch_norm_of(name):
    """The batch norm after a bottom-up convolution (the next module in its block), else None."""
    if not name.startswith("base_network.layers."):
        return None
    stem, index = name.rsplit(".", 1)
    return f"{stem}.{int(index) + 1}"


def folded(sd):
    """Every convolution as (weight OIHW, bias), batch norms folded in."""
    return {name: folded_conv(sd, name, batch_norm_of(name)) for name in CONVS}


def build(params, size, ball_box, trained=(1280, 720), height=None, person_classes=1):
    """The graph for `size`×`height` inputs (square when `height` is None) from folded
    convolutions (`folded`). The regressor's offsets and sizes are fractions of the crops the
    network was first trained on (`trained`, width × height). The player classifier gives
    background and `person_classes` kinds of person; a cell's person score is one minus the
    background's, given to its most likely kind."""
    width, height = size, height or size
    if width % 32 or height % 32:
        raise SystemExit(f"the input must be a multiple of 32 on each side (the network pools five times), got {width}×{height}")
    g = Graph()
    x = g.op("Sub", ["images", g.const(MEAN.reshape(1, 3, 1, 1))])
    x = g.op("Div", [x, g.const(STD.reshape(1, 3, 1, 1))])
    levels = []
    for block in BLOCKS:
        for name in block:
            x = g.conv(x, *params[name])
        x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        levels.append(x)
    laterals = [g.conv(levels[i], *params[f"base_network.lateral_layers.{i - 1}"], relu=False)
                for i in range(1, 5)]
    top = laterals[-1]
    pyramid = [top]
    scales = g.const(np.array([1, 1, 2, 2], np.float32), "scales")
    for lat in reversed(laterals[:-1]):
        up = g.op("Resize", [top, "", scales], mode="linear",
                  coordinate_transformation_mode="half_pixel")
        top = g.op("Add", [up, lat])
        pyramid.append(top)
    pyramid = pyramid[::-1]  # strides 4, 8, 16, 32
    ball_feat, player_feat = pyramid[0], pyramid[2]

    def head(feat, name):
        h = g.conv(feat, *params[f"{name}.0"])
        return g.conv(h, *params[f"{name}.2"], relu=False)

    def channels(t, start, end):
        return g.op("Slice", [t, g.const(np.array([start])), g.const(np.array([end])), g.const(np.array([1]))])

    def peaks(obj):
        """`obj` where it is the 3×3 local maximum, else 0."""
        top = g.op("MaxPool", [obj], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])
        keep = g.op("Cast", [g.op("Equal", [obj, top])], to=TensorProto.FLOAT)
        return g.op("Mul", [obj, keep])

    def cell_centres(stride):
        cx = np.arange(width // stride, dtype=np.float32) * stride + (stride - 1) / 2.0
        cy = np.arange(height // stride, dtype=np.float32) * stride + (stride - 1) / 2.0
        xs = np.broadcast_to(cx[None, :], (cy.size, cx.size))
        ys = np.broadcast_to(cy[:, None], (cy.size, cx.size))
        return np.stack([xs, ys])[None].astype(np.float32)  # [1, 2, H, W]

    def flat(t, n):
        return g.op("Reshape", [t, g.const(np.array([0, n, -1]))])

    zero = g.const(np.float32(0))
    n_out = 4 + person_classes + 1
    # People: box from the regressor, score from the classifier, ball score 0.
    reg = head(player_feat, "player_regressor")
    scale = g.const(np.array(trained, np.float32).reshape(1, 2, 1, 1))
    centre = g.op("Add", [g.const(cell_centres(PLAYER_STRIDE)), g.op("Mul", [channels(reg, 0, 2), scale])])
    wh = g.op("Mul", [channels(reg, 2, 4), scale])
    prob = g.op("Softmax", [head(player_feat, "player_classifier")], axis=1)
    person = g.op("Sub", [g.const(np.float32(1)), channels(prob, 0, 1)])
    kinds = channels(prob, 1, 1 + person_classes)
    best = g.op("Cast", [g.op("Equal", [kinds, g.op("ReduceMax", [kinds], axes=[1], keepdims=1)])],
                to=TensorProto.FLOAT)
    p_scores = g.op("Mul", [peaks(person), best])
    p_zero = g.op("Mul", [person, zero])
    people = flat(g.op("Concat", [centre, wh, p_scores, p_zero], axis=1), n_out)

    # The ball: a fixed box at the cell centre, people's scores 0.
    b_prob = g.op("Softmax", [head(ball_feat, "ball_classifier")], axis=1)
    b_score = peaks(channels(b_prob, 1, 2))
    b_zero = g.op("Mul", [b_score, zero])
    b_centre = g.op("Add", [g.const(cell_centres(BALL_STRIDE)), g.op("Concat", [b_zero, b_zero], axis=1)])
    b_wh = g.op("Add", [g.op("Concat", [b_zero, b_zero], axis=1), g.const(np.float32(ball_box))])
    balls = flat(g.op("Concat", [b_centre, b_wh] + [b_zero] * person_classes + [b_score], axis=1), n_out)

    out = g.op("Concat", [people, balls], axis=2)
    g.nodes.append(helper.make_node("Identity", [out], ["output0"]))
    cells = (width // PLAYER_STRIDE) * (height // PLAYER_STRIDE) + (width // BALL_STRIDE) * (height // BALL_STRIDE)
    graph = helper.make_graph(
        g.nodes, "footandball",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, height, width])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", n_out, cells])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="polyvision models/footandball.py")
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def macs_per_tile(params, size):
    """Multiply-adds of one tile, counted from the convolutions' shapes and strides."""
    total = 0
    stride = 1
    for block in BLOCKS:
        for name in block:
            total += params[name][0].size * (size // stride) ** 2
        stride *= 2
    for i in range(1, 5):
        total += params[f"base_network.lateral_layers.{i - 1}"][0].size * (size // 2 ** (i + 1)) ** 2
    for name, s in [("ball_classifier", 4), ("player_classifier", 16), ("player_regressor", 16)]:
        for k in (0, 2):
            total += params[f"{name}.{k}"][0].size * (size // s) ** 2
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True, help="path without extension: writes X.onnx, X.card.json")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--ball-box", type=float, default=12.0)
    ap.add_argument("--player-score", type=float, default=0.5)
    ap.add_argument("--ball-score", type=float, default=0.7)
    ap.add_argument("--name", default="footandball (ISSIA-CNR + bmvc17 weights)")
    ap.add_argument("--notes", default="FootAndBall weights from jac99/FootAndBall (MIT), "
                    "model_20201019_1416_final.pth; layers defined in models/footandball.py.")
    args = ap.parse_args()
    sd = load_state_dict(args.weights)
    if isinstance(sd, dict) and "model" in sd and not any(k.startswith("base_network") for k in sd):
        sd = sd["model"]
    params = folded(sd)
    model = build(params, args.size, args.ball_box)
    onnx.save(model, args.out + ".onnx")
    macs = macs_per_tile(params, args.size)
    card = {
        "name": args.name,
        "input_size": args.size,
        "classes": ["player", "ball"],
        "min_scores": {"player": args.player_score, "ball": args.ball_score},
        "notes": args.notes,
        "gmacs_per_tile": round(macs / 1e9, 3),
    }
    with open(args.out + ".card.json", "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    params = sum(v.size for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    print(f"{args.out}.onnx: {params} parameters, {macs / 1e9:.2f} GMAC per {args.size}² tile")


if __name__ == "__main__":
    main()
