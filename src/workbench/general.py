"""The `default` general classifier: ImageNet names, WordNet hierarchy, ancestor scores, colour words.

The backbone gives 1000 ImageNet probabilities; this module turns them into Watson v3 class dicts:
leaves with a `type_hierarchy`, their ancestors scored by the summed probability of the leaves beneath
them (so an ancestor never scores below a child), and colour words from the image's pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from .vocabulary import SCORE_DECIMALS

IMAGENET_CLASS_COUNT = 1000
HIERARCHY_RESOURCE = ("data", "imagenet_hierarchy.json")  # under package workbench; built by tools/build_general_data.py

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

_SRGB_TO_XYZ = np.array([  # IEC 61966-2-1 sRGB (D65) linear RGB -> CIE XYZ
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
_D65_WHITE_XYZ = np.array([0.95047, 1.0, 1.08883])
_LAB_EPSILON = (6.0 / 29.0) ** 3  # CIELAB: below this the cube root is replaced by a line


@dataclass(frozen=True)
class Hierarchy:
    """The 1000 leaves with one chosen WordNet path each, and the ancestor nodes above them."""

    wnids: tuple[str, ...]  # per class index
    leaf_names: tuple[str, ...]  # per class index, unique
    type_hierarchies: tuple[str, ...]  # per class index, "/animal/.../golden retriever"
    ancestor_names: tuple[str, ...]  # every non-leaf node, sorted
    leaf_in_ancestor: np.ndarray  # (1000, len(ancestor_names)) float64 0/1: leaf i lies under ancestor j
    leaves_under: dict[str, frozenset[int]]  # node name (ancestor or leaf) -> class indices beneath it


def build_hierarchy(classes: list[dict]) -> Hierarchy:
    """Index the package-data classes ({wnid, name, path}) for vectorised ancestor scoring."""
    if len(classes) != IMAGENET_CLASS_COUNT:
        raise ValueError(f"expected {IMAGENET_CLASS_COUNT} classes, got {len(classes)}")
    leaves_under: dict[str, set[int]] = {}
    for index, cls in enumerate(classes):
        for node in cls["path"]:
            leaves_under.setdefault(node, set()).add(index)
    leaf_names = tuple(cls["name"] for cls in classes)
    ancestor_names = tuple(sorted(set(leaves_under) - set(leaf_names)))
    column_of = {name: column for column, name in enumerate(ancestor_names)}
    leaf_in_ancestor = np.zeros((IMAGENET_CLASS_COUNT, len(ancestor_names)), dtype=np.float64)
    for index, cls in enumerate(classes):
        for node in cls["path"][:-1]:
            leaf_in_ancestor[index, column_of[node]] = 1.0
    leaf_in_ancestor.setflags(write=False)
    return Hierarchy(
        wnids=tuple(cls["wnid"] for cls in classes),
        leaf_names=leaf_names,
        type_hierarchies=tuple("/" + "/".join(cls["path"]) for cls in classes),
        ancestor_names=ancestor_names,
        leaf_in_ancestor=leaf_in_ancestor,
        leaves_under={name: frozenset(indices) for name, indices in leaves_under.items()},
    )


@lru_cache(maxsize=1)
def load_hierarchy() -> Hierarchy:
    """The packaged ImageNet hierarchy, read once per process."""
    text = resources.files("workbench").joinpath(*HIERARCHY_RESOURCE).read_text(encoding="utf-8")
    return build_hierarchy(json.loads(text)["classes"])


def _score(value: float) -> float:
    """A Watson score: a plain Python float rounded to SCORE_DECIMALS."""
    return round(float(value), SCORE_DECIMALS)


def _by_score(entry: dict) -> tuple[float, int, str]:
    """Sort key: score descending, then leaves (with type_hierarchy) first, then name."""
    return (-entry["score"], 0 if "type_hierarchy" in entry else 1, entry["class"])


def default_classes(probabilities: np.ndarray, threshold: float) -> list[dict]:
    """Watson class dicts for one image from its (1000,) ImageNet softmax vector.

    Leaves scoring >= threshold come with their `type_hierarchy`; every ancestor of those leaves, and any
    ancestor whose own score reaches the threshold, comes without one.  An ancestor's score is the
    summed probability of all leaves beneath it (capped at 1.0), so it is never below a child's.
    """
    scores = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if scores.shape != (IMAGENET_CLASS_COUNT,):
        raise ValueError(f"expected {IMAGENET_CLASS_COUNT} probabilities, got shape {np.shape(probabilities)}")
    hierarchy = load_hierarchy()
    ancestor_scores = np.minimum(scores @ hierarchy.leaf_in_ancestor, 1.0)
    leaf_kept = scores >= threshold
    ancestor_kept = (ancestor_scores >= threshold) | hierarchy.leaf_in_ancestor[leaf_kept].any(axis=0)
    entries = [
        {"class": hierarchy.leaf_names[i], "score": _score(scores[i]), "type_hierarchy": hierarchy.type_hierarchies[i]}
        for i in np.flatnonzero(leaf_kept)
    ]
    entries += [
        {"class": hierarchy.ancestor_names[j], "score": _score(ancestor_scores[j])}
        for j in np.flatnonzero(ancestor_kept)
    ]
    return sorted(entries, key=_by_score)


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


_COLOR_NAMES = tuple(COLOR_ANCHORS_RGB)
COLOR_QUANTIZE_SHIFT_BITS = 3  # pixels are named on 5 bits per channel (32,768 cells): no visible difference


@lru_cache(maxsize=1)
def nearest_color_table() -> np.ndarray:
    """Palette index of the CIELAB-nearest colour word for each 5-bit-per-channel RGB cell (built once)."""
    levels = 256 >> COLOR_QUANTIZE_SHIFT_BITS
    centres = (np.arange(levels) << COLOR_QUANTIZE_SHIFT_BITS) + (1 << COLOR_QUANTIZE_SHIFT_BITS) // 2
    red, green, blue = np.meshgrid(centres, centres, centres, indexing="ij")
    cells_lab = srgb_to_lab(np.stack([red, green, blue], axis=-1).reshape(-1, 3))
    anchors_lab = srgb_to_lab(np.array(list(COLOR_ANCHORS_RGB.values()), dtype=np.uint8))
    squared_distances = ((cells_lab[:, None, :] - anchors_lab[None, :, :]) ** 2).sum(axis=-1)
    return squared_distances.argmin(axis=1).astype(np.uint8)


def color_fractions(image: Image.Image) -> dict[str, float]:
    """Fraction of the image's pixels nearest, in CIELAB, to each palette colour.

    Counted on an evenly spaced sample of COLOR_THUMBNAIL_EDGE_PX x COLOR_THUMBNAIL_EDGE_PX pixels
    (nearest-neighbour resize: fast, and it never blends two colours into a third).
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    sample = rgb.resize((COLOR_THUMBNAIL_EDGE_PX, COLOR_THUMBNAIL_EDGE_PX), Image.Resampling.NEAREST)
    cells = np.asarray(sample, dtype=np.intp).reshape(-1, 3) >> COLOR_QUANTIZE_SHIFT_BITS
    bits = 8 - COLOR_QUANTIZE_SHIFT_BITS
    cell_index = (cells[:, 0] << (2 * bits)) | (cells[:, 1] << bits) | cells[:, 2]
    counts = np.bincount(nearest_color_table()[cell_index], minlength=len(_COLOR_NAMES))
    return {name: float(count) / len(cell_index) for name, count in zip(_COLOR_NAMES, counts)}


def color_classes(image: Image.Image, threshold: float) -> list[dict]:
    """Watson colour classes (`{"class": "red color", "score": fraction}`) with fraction >= threshold.

    Colours covering no pixel are left out even at threshold 0: a 0.0 colour says nothing.
    """
    entries = [
        {"class": name, "score": _score(fraction)}
        for name, fraction in color_fractions(image).items()
        if fraction > 0.0 and fraction >= threshold
    ]
    return sorted(entries, key=_by_score)
