"""Colour words: naming pixels with the 23 colours Watson answers with, and a share of pixels as a confidence.

Each word is anchored at a typical sRGB value; a pixel is named by the CIELAB-nearest anchor (a table over
5-bit-per-channel RGB cells, built once). An image is sampled on a small nearest-neighbour thumbnail while
it is decoded (`color_sample`: the whole frame and each square the backbone sees). A colour's share of
the pixels becomes a confidence (`color_confidence`): a quarter of them reads 0.5, all of them 1.0.
Which pixels count (the subject's or the frame's) is `subject_colors`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from .class_entries import by_score, watson_score

COLOR_CONFIDENCE_SCALE = 0.41  # share -> confidence curve: a quarter of the pixels reads 0.5, all of them 1.0
COLOR_THUMBNAIL_EDGE_PX = 64  # colours are counted on a 64x64 pixel sample: enough pixels, well under 2 ms
# Colour words Watson answers with, each anchored at a typical sRGB value (0..255 per channel).
COLOR_ANCHORS_RGB: dict[str, tuple[int, int, int]] = {
    "black color": (15, 15, 15),
    "charcoal color": (54, 60, 66),
    "gray color": (128, 128, 128),
    "silver color": (192, 192, 192),
    "white color": (250, 250, 250),
    "ivory color": (255, 250, 225),
    "beige color": (225, 210, 175),
    "tan color": (210, 180, 140),
    "light brown color": (181, 134, 84),
    "brown color": (110, 70, 40),
    "maroon color": (128, 0, 0),
    "red color": (230, 25, 25),
    "pink color": (255, 175, 190),
    "orange color": (255, 140, 0),
    "yellow color": (255, 220, 0),
    "olive green color": (110, 110, 40),
    "green color": (40, 160, 60),
    "dark green color": (0, 85, 40),
    "teal color": (0, 128, 128),
    "light blue color": (150, 200, 240),
    "blue color": (40, 90, 220),
    "navy color": (20, 30, 90),
    "purple color": (120, 50, 150),
}
# More anchors for a word whose pixels span more than one anchor covers: an orange flower's petals are mostly
# (217, 130, 69), nearer light brown's anchor than the saturated orange one, and were named light brown.
COLOR_EXTRA_ANCHORS_RGB: tuple[tuple[str, tuple[int, int, int]], ...] = (("orange color", (225, 125, 60)),)

_SRGB_TO_XYZ = np.array(
    [  # IEC 61966-2-1 sRGB (D65) linear RGB -> CIE XYZ
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE_XYZ = np.array([0.95047, 1.0, 1.08883])
_LAB_EPSILON = (6.0 / 29.0) ** 3  # CIELAB: below this the cube root is replaced by a line


def _srgb_to_linear_lut() -> np.ndarray:
    """Linear-light value of each 8-bit sRGB code (IEC 61966-2-1 transfer curve), indexed 0..255."""
    unit = np.arange(256, dtype=np.float64) / 255.0
    return np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)


_SRGB_TO_LINEAR = _srgb_to_linear_lut()


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB values, shape (..., 3) -> (..., 3); distances there track perception."""
    linear = _SRGB_TO_LINEAR[np.asarray(rgb, dtype=np.uint8)]
    xyz = (linear @ _SRGB_TO_XYZ.T) / _D65_WHITE_XYZ
    f = np.where(xyz > _LAB_EPSILON, np.cbrt(xyz), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    lightness = 116.0 * f[..., 1] - 16.0
    green_red = 500.0 * (f[..., 0] - f[..., 1])
    blue_yellow = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, green_red, blue_yellow], axis=-1)


COLOR_NAMES = tuple(COLOR_ANCHORS_RGB)
COLOR_QUANTIZE_SHIFT_BITS = 3  # pixels are named on 5 bits per channel (32,768 cells): no visible difference


@lru_cache(maxsize=1)
def nearest_color_table() -> np.ndarray:
    """Palette index of the CIELAB-nearest colour word for each 5-bit-per-channel RGB cell (built once)."""
    levels = 256 >> COLOR_QUANTIZE_SHIFT_BITS
    centres = (np.arange(levels) << COLOR_QUANTIZE_SHIFT_BITS) + (1 << COLOR_QUANTIZE_SHIFT_BITS) // 2
    red, green, blue = np.meshgrid(centres, centres, centres, indexing="ij")
    cells_lab = srgb_to_lab(np.stack([red, green, blue], axis=-1).reshape(-1, 3))
    anchors = [*COLOR_ANCHORS_RGB.items(), *COLOR_EXTRA_ANCHORS_RGB]
    anchors_lab = srgb_to_lab(np.array([rgb for _, rgb in anchors], dtype=np.uint8))
    word_of_anchor = np.array([COLOR_NAMES.index(name) for name, _ in anchors], dtype=np.uint8)
    squared_distances = ((cells_lab[:, None, :] - anchors_lab[None, :, :]) ** 2).sum(axis=-1)
    return word_of_anchor[squared_distances.argmin(axis=1)]


def _thumbnail(image: Image.Image, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """COLOR_THUMBNAIL_EDGE_PX x COLOR_THUMBNAIL_EDGE_PX evenly spaced RGB pixels (uint8) of the image or its `box`.

    Nearest-neighbour sampling: fast, and it never blends two colours into a third.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    edge = COLOR_THUMBNAIL_EDGE_PX
    return np.asarray(rgb.resize((edge, edge), Image.Resampling.NEAREST, box=box), dtype=np.uint8)


def _palette_of(pixels: np.ndarray) -> np.ndarray:
    """Palette index of each of (..., 3) uint8 RGB pixels, flattened row-major."""
    cells = pixels.reshape(-1, 3).astype(np.intp) >> COLOR_QUANTIZE_SHIFT_BITS
    bits = 8 - COLOR_QUANTIZE_SHIFT_BITS
    return nearest_color_table()[(cells[:, 0] << (2 * bits)) | (cells[:, 1] << bits) | cells[:, 2]]


def palette_indices(image: Image.Image, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Palette index of COLOR_THUMBNAIL_EDGE_PX x COLOR_THUMBNAIL_EDGE_PX evenly spaced pixels, row-major.

    Of the whole image, or of `box` (left, top, right, bottom) in it.
    """
    return _palette_of(_thumbnail(image, box))


def color_confidence(share: np.ndarray | float) -> np.ndarray:
    """A colour's share of the pixels (0..1) as a confidence that it describes them: 0.25 -> 0.5, 0.5 -> 0.77, 1 -> 1.

    Concave: a colour covering a quarter of a subject describes it as well as a coin toss, and
    three colours at most can reach 0.5 together.
    """
    curve = 1.0 - np.exp(-np.asarray(share, dtype=np.float64) / COLOR_CONFIDENCE_SCALE)
    return curve / (1.0 - np.exp(-1.0 / COLOR_CONFIDENCE_SCALE))


def color_entries(shares: np.ndarray, threshold: float) -> list[dict]:
    """Colour class dicts whose confidence reaches the threshold; colours with no share are left out even at 0."""
    confidence = color_confidence(shares)
    entries = [
        {"class": COLOR_NAMES[i], "score": watson_score(confidence[i])}
        for i in np.flatnonzero((shares > 0.0) & (confidence >= threshold))
    ]
    return sorted(entries, key=by_score)


def color_classes(image: Image.Image, threshold: float) -> list[dict]:
    """Whole-frame colour classes: each palette colour's share of the pixels as a confidence, >= threshold."""
    counts = np.bincount(palette_indices(image), minlength=len(COLOR_NAMES))
    return color_entries(counts / counts.sum(), threshold)


@dataclass(frozen=True)
class ColorSample:
    """An image's colours as the `default` classifier needs them, taken while it is decoded."""

    frame: np.ndarray  # palette index of each sampled pixel of the whole image
    crops: tuple[np.ndarray, ...]  # the same over each square the backbone sees (`spec.view_boxes`), row-major
    spread: float  # the largest per-channel standard deviation of the frame's sampled pixels (0..255): ~0 when blank


def color_sample(image: Image.Image, boxes: list[tuple[float, float, float, float]]) -> ColorSample:
    """Samples the whole image and each view box of it (about 1 ms for one view)."""
    frame = _thumbnail(image)
    spread = float(frame.reshape(-1, 3).astype(np.float32).std(axis=0).max())
    return ColorSample(_palette_of(frame), tuple(palette_indices(image, box) for box in boxes), spread)
