"""The EfficientNet-Lite0 torch module and its packaged weights (torch is imported only here)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.spec import EMBEDDING_SIZE, IMAGENET_CLASSES, WINDOW_CELLS, BackboneSpec

BN_EPS = 1e-3  # TF-Lite EfficientNet batch-norm epsilon

# (repeats, stride, expand ratio, output channels) per stage; kernel sizes come from the weights
LITE0_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 1, 1, 16),
    (2, 2, 6, 24),
    (2, 2, 6, 40),
    (3, 2, 6, 80),
    (3, 1, 6, 112),
    (4, 2, 6, 192),
    (1, 1, 6, 320),
)


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding (asymmetric when the stride is 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (the Lite variant)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0; `forward` gives four outputs from one pass (see `forward`)."""

    def __init__(self, kernels: Sequence[int]) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[MBConv] = []
        c_in = 32
        for repeats, stride, expand, c_out in LITE0_STAGES:
            for i in range(repeats):
                k = kernels[len(blocks)]
                blocks.append(MBConv(c_in, c_out, expand, k, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, EMBEDDING_SIZE, 1, bias=False)
        self._bn1 = _bn(EMBEDDING_SIZE)
        self._fc = nn.Linear(EMBEDDING_SIZE, IMAGENET_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(embeddings N x 1280, logits N x 1000, window logits N x windows x 1000, features N x 1280 x 7 x 7).

        The embedding is the mean of the last feature map, as ever; the window logits are the same
        ImageNet head applied to the mean of each WINDOW_CELLS x WINDOW_CELLS window (stride 1, row-major).
        """
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        features = F.relu6(self._bn1(self._conv_head(x)))
        embeddings = features.mean(dim=(2, 3))
        windows = F.avg_pool2d(features, WINDOW_CELLS, stride=1).flatten(2).transpose(1, 2)
        return embeddings, self._fc(embeddings), self._fc(windows), features


def load_network(spec: BackboneSpec) -> EfficientNetLite:
    """Builds the network and loads the packaged weights with strict=True (no download)."""
    state = torch.load(spec.weights_path, map_location="cpu", weights_only=True)
    n_blocks = sum(r for r, *_ in LITE0_STAGES)
    kernels = [state[f"_blocks.{i}._depthwise_conv.weight"].shape[-1] for i in range(n_blocks)]
    net = EfficientNetLite(kernels)
    net.load_state_dict(state, strict=True)
    return net.eval()
