"""A reference evaluator of Core ML neural-network specs, for tests on Linux (no Core ML runtime there).

coremltools can read and write `.mlmodel` files on any OS, but `MLModel.predict` needs Apple's
Core ML framework (macOS only). This runs the layers an exported classifier uses, as the Core ML
NeuralNetwork.proto documents them, with torch operations, so a test can check the file's graph,
weights and image preprocessing numerically. It is not Apple's runtime: float16 compute on the GPU
or Neural Engine, and Vision's own resizing of camera frames, stay unchecked.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _floats(weights, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(np.asarray(weights.floatValue, np.float32).reshape(shape))


def _convolution(layer, x: torch.Tensor) -> torch.Tensor:
    p = layer.convolution
    assert p.WhichOneof("ConvolutionPaddingType") == "valid" and not p.isDeconvolution
    assert all(a.startEdgeSize == a.endEdgeSize == 0 for a in p.valid.paddingAmounts.borderAmounts)
    weight = _floats(p.weights, (p.outputChannels, p.kernelChannels, *p.kernelSize))
    bias = _floats(p.bias, (p.outputChannels,)) if p.hasBias else None
    return F.conv2d(x, weight, bias, tuple(p.stride), 0, tuple(p.dilationFactor), p.nGroups)


def _padding(layer, x: torch.Tensor) -> torch.Tensor:
    p = layer.padding
    assert p.WhichOneof("PaddingType") == "constant"
    (top, left) = [(a.startEdgeSize, a.endEdgeSize) for a in p.paddingAmounts.borderAmounts]
    return F.pad(x, (left[0], left[1], top[0], top[1]), value=p.constant.value)


def _activation(layer, x: torch.Tensor) -> torch.Tensor:
    kind = layer.activation.WhichOneof("NonlinearityType")
    if kind == "ReLU":
        return torch.relu(x)
    if kind == "linear":
        return layer.activation.linear.alpha * x + layer.activation.linear.beta
    if kind == "sigmoid":
        return torch.sigmoid(x)
    raise NotImplementedError(kind)


def _unary(layer, x: torch.Tensor) -> torch.Tensor:
    p = layer.unary
    if p.type == p.THRESHOLD:  # max(x, alpha) after scale and shift
        return torch.clamp_min(p.scale * x + p.shift, p.alpha)
    raise NotImplementedError(p.type)


def _inner_product(layer, x: torch.Tensor) -> torch.Tensor:
    p = layer.innerProduct
    weight = _floats(p.weights, (p.outputChannels, p.inputChannels))
    bias = _floats(p.bias, (p.outputChannels,)) if p.hasBias else None
    return F.linear(x, weight, bias)


def _reduce_axes(p, x: torch.Tensor) -> tuple[int, ...]:
    return tuple(a % x.dim() for a in p.axes)


def run_layer(layer, inputs: list[torch.Tensor]) -> torch.Tensor:
    """One layer's output from its inputs (only the layer types our exports contain)."""
    kind = layer.WhichOneof("layer")
    x = inputs[0] if inputs else None
    if kind == "convolution":
        return _convolution(layer, x)
    if kind == "padding":
        return _padding(layer, x)
    if kind == "activation":
        return _activation(layer, x)
    if kind == "unary":
        return _unary(layer, x)
    if kind == "add":
        return sum(inputs[1:], inputs[0]) + layer.add.alpha
    if kind == "multiply":  # one input: times alpha; several: their product
        if len(inputs) == 1:
            return x * layer.multiply.alpha
        product = inputs[0]
        for other in inputs[1:]:
            product = product * other
        return product
    if kind == "reduceMean":
        return x.mean(dim=_reduce_axes(layer.reduceMean, x), keepdim=layer.reduceMean.keepDims)
    if kind == "reduceL2":
        return torch.linalg.vector_norm(x, dim=_reduce_axes(layer.reduceL2, x), keepdim=layer.reduceL2.keepDims)
    if kind == "loadConstantND":
        return _floats(layer.loadConstantND.data, tuple(layer.loadConstantND.shape))
    if kind == "maxBroadcastable":
        return torch.maximum(inputs[0], inputs[1])
    if kind == "divideBroadcastable":
        return inputs[0] / inputs[1]
    if kind == "innerProduct":
        return _inner_product(layer, x)
    if kind == "clip":
        return torch.clamp(x, layer.clip.minVal, layer.clip.maxVal)
    raise NotImplementedError(f"layer type {kind}")


def evaluate(spec, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Runs a neural-network classifier spec on uint8 RGB images (N x H x W x 3): every output blob by name.

    The image input's scale and per-channel bias are applied as Core ML's preprocessing does.
    """
    network = spec.neuralNetworkClassifier
    (pre,) = network.preprocessing
    scaler = pre.scaler
    bias = torch.tensor([scaler.redBias, scaler.greenBias, scaler.blueBias]).view(1, 3, 1, 1)
    image = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(torch.float32) * scaler.channelScale + bias
    blobs = {pre.featureName: image}
    with torch.inference_mode():
        for layer in network.layers:
            blobs[layer.output[0]] = run_layer(layer, [blobs[name] for name in layer.input])
    return {name: blob.numpy() for name, blob in blobs.items()}
