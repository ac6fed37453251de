"""The backbone as an ONNX graph, written straight from the weights: batch norm folded, no tracing.

`torch.onnx` (dynamo) needs about 5 s on 2 cores to trace the network; this builder reads the
same state dict and writes the same graph (convolutions with TF "same" padding, ReLU6 as Clip,
the four outputs of `EfficientNetLite.forward`) in well under a second, so a first run serves
with ONNX Runtime almost at once. `onnx_engine` checks the result against torch before caching it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..core.spec import IMAGENET_CLASSES, WINDOW_CELLS, BackboneSpec

if TYPE_CHECKING:
    import onnx

INPUT_NAME = "images"
OUTPUT_NAMES = ("embeddings", "logits", "window_logits", "features")
FC_WEIGHT, FC_BIAS = "_fc.weight", "_fc.bias"  # initializer names of the ImageNet head (torch's parameter names)
OPSET = 17
BN_EPS = 1e-3  # TF-Lite EfficientNet batch-norm epsilon (as `network.BN_EPS`)
STAGES: tuple[tuple[int, int, int, int], ...] = (  # (repeats, stride, expand, out channels), as `network.LITE0_STAGES`
    (1, 1, 1, 16),
    (2, 2, 6, 24),
    (2, 2, 6, 40),
    (3, 2, 6, 80),
    (3, 1, 6, 112),
    (4, 2, 6, 192),
    (1, 1, 6, 320),
)


class _Graph:
    """Nodes and initializers under construction; each helper returns its output's name."""

    def __init__(self, state: Mapping[str, np.ndarray]) -> None:
        self.state = state
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv_bn(
        self, x: str, conv: str, bn: str, size: int, stride: int = 1, groups: int = 1, same: bool = False
    ) -> tuple[str, int]:
        """Conv (weights `conv`.weight), batch norm `bn` folded into weights and bias; returns (output, out size)."""
        weight = self.state[f"{conv}.weight"]
        scale = self.state[f"{bn}.weight"] / np.sqrt(self.state[f"{bn}.running_var"] + BN_EPS)
        bias = self.state[f"{bn}.bias"] - self.state[f"{bn}.running_mean"] * scale
        kernel = weight.shape[-1]
        pads = [0, 0, 0, 0]
        if same:  # TF "same": the extra pixel of an odd total goes after (bottom, right)
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads = [total // 2, total // 2, total - total // 2, total - total // 2]
        out = self.node(
            "Conv",
            [
                x,
                self.constant(f"{conv}.w", (weight * scale[:, None, None, None]).astype(np.float32)),
                self.constant(f"{conv}.b", bias.astype(np.float32)),
            ],
            f"{conv}.out",
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=pads,
            group=groups,
        )
        return out, (size + pads[0] + pads[2] - kernel) // stride + 1

    def relu6(self, x: str) -> str:
        return self.node("Clip", [x, "zero", "six"], f"{x}.relu6")


def build_model(state: Mapping[str, np.ndarray], spec: BackboneSpec) -> onnx.ModelProto:
    """The network's graph from its state dict (numpy arrays): images -> embeddings, logits, window logits, features."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(state)
    g.constant("zero", np.array(0.0, np.float32))
    g.constant("six", np.array(6.0, np.float32))
    x, size = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", spec.input_size_px, 2, same=True)
    x, c_in, index = g.relu6(x), 32, 0
    for repeats, stride, expand, c_out in STAGES:
        for i in range(repeats):
            block, y = f"_blocks.{index}", x
            if expand != 1:
                y, _ = g.conv_bn(y, f"{block}._expand_conv", f"{block}._bn0", size)
                y = g.relu6(y)
            y, new_size = g.conv_bn(
                y,
                f"{block}._depthwise_conv",
                f"{block}._bn1",
                size,
                stride if i == 0 else 1,
                groups=c_in * expand,
                same=True,
            )
            y = g.relu6(y)
            y, _ = g.conv_bn(y, f"{block}._project_conv", f"{block}._bn2", new_size)
            x = g.node("Add", [x, y], f"{block}.sum") if (stride if i == 0 else 1) == 1 and c_in == c_out else y
            c_in, size, index = c_out, new_size, index + 1
    head, _ = g.conv_bn(x, "_conv_head", "_bn1", size)
    embeddings, logits, windows_out, features = OUTPUT_NAMES
    g.node("Clip", [head, "zero", "six"], features)
    pooled = g.node("GlobalAveragePool", [features], "pooled")
    g.node("Flatten", [pooled], embeddings, axis=1)
    fc_weight, fc_bias = g.constant(FC_WEIGHT, state["_fc.weight"]), g.constant(FC_BIAS, state["_fc.bias"])
    g.node("Gemm", [embeddings, fc_weight, fc_bias], logits, transB=1)
    windows = g.node("AveragePool", [features], "windows", kernel_shape=[WINDOW_CELLS] * 2, strides=[1, 1])
    rows = g.node(
        "Reshape", [windows, g.constant("rows_shape", np.array([0, spec.embedding_size, -1], np.int64))], "window_rows"
    )
    rows = g.node("Transpose", [rows], "window_rows_t", perm=[0, 2, 1])
    product = g.node(
        "MatMul", [rows, g.constant("_fc.weight_t", np.ascontiguousarray(state["_fc.weight"].T))], "window_product"
    )
    g.node("Add", [product, fc_bias], windows_out)
    side = spec.input_size_px
    grid = spec.feature_grid
    outputs = [
        helper.make_tensor_value_info(embeddings, TensorProto.FLOAT, ["batch", spec.embedding_size]),
        helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["batch", IMAGENET_CLASSES]),
        helper.make_tensor_value_info(windows_out, TensorProto.FLOAT, ["batch", spec.window_count, IMAGENET_CLASSES]),
        helper.make_tensor_value_info(features, TensorProto.FLOAT, ["batch", spec.embedding_size, grid, grid]),
    ]
    graph = helper.make_graph(
        g.nodes,
        spec.backbone_id,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, side, side])],
        outputs,
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="workbench")
    onnx.checker.check_model(model)
    return model


def load_state(spec: BackboneSpec) -> dict[str, np.ndarray]:
    """The packaged weights as float32 numpy arrays (torch reads the file; nothing else of torch is used)."""
    import torch

    state = torch.load(spec.weights_path, map_location="cpu", weights_only=True)
    return {name: tensor.float().numpy() for name, tensor in state.items() if tensor.dtype.is_floating_point}
