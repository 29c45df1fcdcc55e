#!/usr/bin/env python3
"""Writes edge/tests/fixtures/tiny-yolo.onnx: a 2-class detector-shaped network with fixed
weights, for testing the inference backends' plumbing (input layout, batching, output layout).

It is not a detector: 16x16 average pooling of a [N, 3, 64, 64] input, then a 1x1 convolution to
4 + 2 channels, reshaped to the YOLOv8 head layout [N, 6, 16]. Its output is easy to compute by
hand, so a test can check a backend's result exactly. Needs the `onnx` package.
"""

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = pathlib.Path(__file__).resolve().parent.parent / "edge" / "tests" / "fixtures" / "tiny-yolo.onnx"

weights = np.array(
    [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, 0.5], [0.25, 0.5, 0.25], [1.0, -1.0, 0.0], [-1.0, 0.0, 1.0]],
    dtype=np.float32,
).reshape(6, 3, 1, 1)
bias = np.array([10.0, 20.0, 5.0, 8.0, 0.0, 0.1], dtype=np.float32)
shape = np.array([0, 6, 16], dtype=np.int64)

graph = helper.make_graph(
    [
        helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Conv", ["pooled", "w", "b"], ["conv"]),
        helper.make_node("Reshape", ["conv", "shape"], ["output0"]),
    ],
    "tiny-yolo",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 64, 64])],
    [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["N", 6, 16])],
    [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b"), numpy_helper.from_array(shape, "shape")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="polyvision")
model.ir_version = 8
onnx.checker.check_model(model)
OUT.write_bytes(model.SerializeToString())
print(OUT, OUT.stat().st_size, "bytes")
