"""The `default` general classifier: ImageNet names, WordNet hierarchy, ancestor scores, colour words.

The backbone gives 1000 ImageNet probabilities for each view of the image (the centre square, and
squares along the long side of a wide one: `spec.view_boxes`) and for each of their windows (the same
head on pooled 4x4-cell windows of the last feature map, one pass); this module turns them into
Watson v3 class dicts: leaves with a `type_hierarchy`, and their ancestors. A leaf's whole-image
score is its best view's.

Multi-label scores. Six dogs of six breeds split one softmax, so no breed reaches 0.5 on the whole
image; each window sees fewer things, so each thing scores on its own there. A leaf scores its
whole-image probability, lifted to its best window, except that (1) a window never renames the
subject: a close relative of the whole image's top leaf (same first RELATIVE_DEPTH nodes of the
hierarchy, e.g. another dog breed) keeps its whole-image score, and (2) a lifted leaf never reaches
the top leaf's score. An ancestor scores the best view's summed probability beneath it, so it never
scores below a child, and every score stays a probability (0..1) of the same kind on every image.

Abstaining. A blank frame, or one whose best view spreads its probability over many families of
leaves (out of ImageNet's domain: a moon, coins, a page of text), answers no object class at 0.5:
`object_confidence` scales its object scores towards 0 (constants below, with what they were measured on).

Colours. With a confident subject (a leaf >= SUBJECT_MIN_SCORE), pixels of the view where it scores
best are weighted by where that leaf's evidence lies (its class activation map) and a colour's share
is what the subject adds over the rest of the square, its achromatic colours counting half; without
one, the whole frame's pixel shares, less a plain background. A share becomes a confidence
(`color_confidence`): a quarter of the subject reads 0.5, all of it 1.0.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..core.vocabulary import NON_FOOD_CLASS, SCORE_DECIMALS
from .maps import cell_logits, minmax, upsample

if TYPE_CHECKING:
    from scipy import sparse  # imported where the hierarchy is built: `workbench list` needs no SciPy (0.15 s)

IMAGENET_CLASS_COUNT = 1000
# The `food` model's leaves: those under the packaged hierarchy's top nodes that WordNet files under "food, nutrient"
# (n00021265, an umbrella the hierarchy drops) and "food, solid food" (n07555863, named `food` there): dishes,
# courses, bread, fruit, vegetables, sauces, drinks. Not fare (its one leaf, `menu`, is ImageNet's printed menu cards)
# nor feed (`hay`: fodder). Plus `corn` and `ear` (of corn), which WordNet files under plant parts.
FOOD_ROOTS = ("food", "nutriment", "foodstuff", "beverage")
FOOD_EXTRA_LEAVES = ("corn", "ear")
HIERARCHY_RESOURCE = (
    "data",
    "imagenet_hierarchy.json",
)  # under package workbench; built by tools/build_general_data.py

RELATIVE_DEPTH = 3  # leaves sharing their first 3 hierarchy nodes (/animal/domestic animal/dog) are close relatives
SUBJECT_MIN_SCORE = 0.5  # a leaf this confident is a subject: its colours are named, not the frame's
MAX_SUBJECTS = 3  # subject colours follow the evidence of at most this many top leaves
MIN_SUBJECT_CONTRAST = 0.1  # below this colour difference from the rest of the frame, the subject's own shares are used
COLOR_CONFIDENCE_SCALE = 0.41  # share -> confidence curve: a quarter of the pixels reads 0.5, all of them 1.0
COLOR_THUMBNAIL_EDGE_PX = 64  # colours are counted on a 64x64 pixel sample: enough pixels, well under 2 ms
# Abstaining (measured on 11 blank and noise images and 38 photos from scikit-image, scikit-learn, matplotlib and the
# tutorial's test folder): blank images sample a spread of 0 (a 3-level noise 3, the flattest photo 10), and
# out-of-domain images spread the best view's ImageNet probability over many families (entropy over the families of
# RELATIVE_DEPTH, in nats: blanks and noise 4.7-5.2, a moon, coins, a page, a blue gift box 3.4-4.4; photos with a
# known subject 0.3-2.9, dogs.jpg's six breeds 2.4). Object scores are scaled by a confidence falling from 1 to 0
# across that band, so those images answer no object class at 0.5; colours still answer (a blank red image is red).
MIN_PIXEL_SPREAD = 5.0  # a frame whose sampled pixels vary less (standard deviation, 0..255) is blank: no object
IN_DOMAIN_ENTROPY_NATS = (2.9, 3.3)  # family entropy below the first: object scores kept; above the second: zero
ACHROMATIC_SUBJECT_WEIGHT = 0.5  # a subject's black, grey and white pixels (tyres, shadows, metal) count half
ACHROMATIC_COLORS = frozenset({"black color", "charcoal color", "gray color", "silver color", "white color"})
PLAIN_BACKGROUND_SHARE = 0.6  # a frame border this much one colour is a plain background: without a confident leaf,
#                               the colours named are the rest of the frame's (a blue gift box on white is blue)
PLAIN_BACKGROUND_CONTRAST = 0.25  # ... and the frame's centre half is this much less of it (grass is not a background)
MIN_FIGURE_SHARE = 0.05  # ... and at least this much of the frame is not the background colour
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


@dataclass(frozen=True)
class Hierarchy:
    """The 1000 leaves with one chosen WordNet path each, and the ancestor nodes above them."""

    wnids: tuple[str, ...]  # per class index
    leaf_names: tuple[str, ...]  # per class index, unique
    type_hierarchies: tuple[str, ...]  # per class index, "/animal/.../golden retriever"
    ancestor_names: tuple[str, ...]  # every non-leaf node, sorted
    leaf_in_ancestor: np.ndarray  # (1000, len(ancestor_names)) float64 0/1: leaf i lies under ancestor j
    leaves_under: dict[str, frozenset[int]]  # node name (ancestor or leaf) -> class indices beneath it
    families: np.ndarray  # (1000,) int: leaves with the same value share their first RELATIVE_DEPTH nodes
    ancestor_of_leaf: sparse.csr_matrix  # leaf_in_ancestor transposed and sparse (ancestors x leaves), float32


def build_hierarchy(classes: list[dict]) -> Hierarchy:
    """Index the package-data classes ({wnid, name, path}) for vectorised ancestor scoring."""
    from scipy import sparse

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
    prefixes: dict[tuple[str, ...], int] = {}
    families = np.array([prefixes.setdefault(tuple(cls["path"][:RELATIVE_DEPTH]), len(prefixes)) for cls in classes])
    return Hierarchy(
        wnids=tuple(cls["wnid"] for cls in classes),
        leaf_names=leaf_names,
        type_hierarchies=tuple("/" + "/".join(cls["path"]) for cls in classes),
        ancestor_names=ancestor_names,
        leaf_in_ancestor=leaf_in_ancestor,
        leaves_under={name: frozenset(indices) for name, indices in leaves_under.items()},
        families=families,
        ancestor_of_leaf=sparse.csr_matrix(leaf_in_ancestor.T.astype(np.float32)),
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


def _check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """(1000,) or (views, 1000) probabilities -> (views, 1000) float64."""
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.ndim not in (1, 2) or scores.shape[-1] != IMAGENET_CLASS_COUNT or scores.size == 0:
        raise ValueError(f"expected {IMAGENET_CLASS_COUNT} probabilities, got shape {np.shape(probabilities)}")
    return scores.reshape(-1, IMAGENET_CLASS_COUNT)


def general_scores(
    probabilities: np.ndarray, window_probabilities: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One image's (leaf scores (1000,), ancestor scores) from its views' and windows' ImageNet softmaxes.

    `probabilities` is (1000,) for one view or (views, 1000) for the squares of a wide image (`spec.view_boxes`):
    a leaf's whole-image score is its best view's. Without windows: those scores, and ancestors as their best
    view's summed leaves. With them, the multi-label rules of this module's docstring.
    """
    whole_views = _check_probabilities(probabilities)
    whole = whole_views.max(axis=0)
    hierarchy = load_hierarchy()
    if window_probabilities is None or len(window_probabilities) == 0:
        return whole, np.minimum((hierarchy.ancestor_of_leaf @ whole_views.T).max(axis=1), 1.0)
    windows = np.asarray(window_probabilities, dtype=np.float64).reshape(-1, IMAGENET_CLASS_COUNT)
    views = np.vstack([whole_views, windows])
    ancestors = np.minimum((hierarchy.ancestor_of_leaf @ views.T).max(axis=1), 1.0)
    best_window = windows.max(axis=0)
    top = int(whole.argmax())
    top_score = max(whole[top], best_window[top])
    lifted = np.minimum(best_window, top_score - 10.0**-SCORE_DECIMALS)  # never ties with the top leaf
    lifted[hierarchy.families == hierarchy.families[top]] = 0.0  # a close relative keeps its whole-image score
    leaves = np.maximum(whole, lifted)
    leaves[top] = top_score
    return leaves, ancestors


def default_classes(
    probabilities: np.ndarray, threshold: float, window_probabilities: np.ndarray | None = None
) -> list[dict]:
    """Watson class dicts for one image from its (1000,) ImageNet softmax vector and its windows' softmaxes.

    Leaves scoring >= threshold come with their `type_hierarchy`; every ancestor of those leaves, and any
    ancestor whose own score reaches the threshold, comes without one. Scores: `general_scores`; an
    ancestor's is never below a child's.
    """
    scores, ancestor_scores = general_scores(probabilities, window_probabilities)
    return _hierarchy_entries(scores, ancestor_scores, threshold)


@lru_cache(maxsize=1)
def _name_ranks() -> tuple[np.ndarray, np.ndarray]:
    """Each leaf's and each ancestor's place in the alphabetical order of all names (`_by_score`'s last key)."""
    hierarchy = load_hierarchy()
    names = [*hierarchy.leaf_names, *hierarchy.ancestor_names]
    ranks = np.empty(len(names), np.int64)
    ranks[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    return ranks[: len(hierarchy.leaf_names)], ranks[len(hierarchy.leaf_names) :]


def _rounded(values: np.ndarray) -> list[float]:
    """`round(v, SCORE_DECIMALS)` of each value, as Python floats, vectorized: numpy's rounding equals Python's
    except within a hair of a half step, and those few values are rounded by Python."""
    scaled = values * 10**SCORE_DECIMALS
    result = (np.rint(scaled) / 10**SCORE_DECIMALS).tolist()
    for i in np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).tolist():
        result[i] = round(float(values[i]), SCORE_DECIMALS)
    return result


def _hierarchy_entries(scores: np.ndarray, ancestor_scores: np.ndarray, threshold: float) -> list[dict]:
    """Kept leaves and ancestors as class dicts in `_by_score` order, sorted by numpy (at threshold 0.0 that is
    1,768 entries: a Python sort and numpy-scalar rounding per entry cost 11 ms an image, more than the backbone)."""
    hierarchy = load_hierarchy()
    leaf_kept = np.flatnonzero(scores >= threshold)
    ancestor_kept = np.flatnonzero((ancestor_scores >= threshold) | hierarchy.leaf_in_ancestor[leaf_kept].any(axis=0))
    rounded = _rounded(np.r_[scores[leaf_kept], ancestor_scores[ancestor_kept]])
    leaf_ranks, ancestor_ranks = _name_ranks()
    is_ancestor = np.r_[np.zeros(len(leaf_kept), np.int8), np.ones(len(ancestor_kept), np.int8)]
    order = np.lexsort((np.r_[leaf_ranks[leaf_kept], ancestor_ranks[ancestor_kept]], is_ancestor, -np.array(rounded)))
    n_leaves, names, types = len(leaf_kept), hierarchy.leaf_names, hierarchy.type_hierarchies
    kept = np.r_[leaf_kept, ancestor_kept].tolist()
    return [
        {"class": names[kept[k]], "score": rounded[k], "type_hierarchy": types[kept[k]]}
        if k < n_leaves
        else {"class": hierarchy.ancestor_names[kept[k]], "score": rounded[k]}
        for k in order.tolist()
    ]


@dataclass(frozen=True)
class FoodModel:
    """The `food` model's part of the hierarchy: its leaves, the nodes above them, and how to sum them."""

    leaves: np.ndarray  # class indices of the food leaves
    ancestor_names: tuple[str, ...]  # nodes above food leaves (within their paths), then the whole of food (last)
    sums: sparse.csr_matrix  # (len(ancestor_names) x 1000) float32: food leaves beneath each node; last row all food


@lru_cache(maxsize=1)
def food_model() -> FoodModel:
    """The food leaves of the packaged hierarchy (`FOOD_ROOTS`, `FOOD_EXTRA_LEAVES`) and their ancestors."""
    from scipy import sparse

    hierarchy = load_hierarchy()
    paths = [path.split("/")[1:] for path in hierarchy.type_hierarchies]
    leaves = [i for i, path in enumerate(paths) if path[0] in FOOD_ROOTS or path[-1] in FOOD_EXTRA_LEAVES]
    ancestors = sorted({node for i in leaves for node in paths[i][:-1]})
    rows, columns = [], []
    for row, node in enumerate([*ancestors, None]):
        beneath = [i for i in leaves if node is None or node in paths[i][:-1]]
        rows += [row] * len(beneath)
        columns += beneath
    sums = sparse.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, columns)), shape=(len(ancestors) + 1, IMAGENET_CLASS_COUNT)
    )
    return FoodModel(np.array(leaves), tuple(ancestors), sums)


def food_classes(
    probabilities: np.ndarray, window_probabilities: np.ndarray, spread: float, threshold: float
) -> list[dict]:
    """The `food` classifier's classes for one image (>= threshold), highest first.

    Its food leaves score as in `default` (`image_scores`: best view, lifted by windows, scaled down on blank and
    out-of-domain images) with their `type_hierarchy`; a node above them scores the best view's or window's
    summed food leaves beneath it (other leaves do not count: `fruit` above `corn` is not raised by `acorn`), and
    every node above a kept leaf is kept, and no node scores below a leaf beneath it. `non-food` scores 1 minus the
    whole of food scored the same way, so an image scores `non-food` >= 0.5 exactly when its food adds up to <= 0.5.
    """
    hierarchy, model = load_hierarchy(), food_model()
    leaves, _ = image_scores(probabilities, window_probabilities, spread)
    confidence = object_confidence(probabilities, spread)
    views = np.vstack(
        [
            _check_probabilities(probabilities),
            np.asarray(window_probabilities, dtype=np.float64).reshape(-1, IMAGENET_CLASS_COUNT),
        ]
    )
    sums = np.minimum((model.sums @ views.T).max(axis=1), 1.0) * confidence
    food_total = float(sums[-1])  # never below a food leaf's score: it sums each leaf's best view or window
    kept = [int(i) for i in model.leaves[leaves[model.leaves] >= threshold]]
    above = {node for i in kept for node in hierarchy.type_hierarchies[i].split("/")[1:-1]}
    entries = [
        {"class": hierarchy.leaf_names[i], "score": _score(leaves[i]), "type_hierarchy": hierarchy.type_hierarchies[i]}
        for i in kept
    ]
    entries += [
        {"class": node, "score": _score(sums[j])}
        for j, node in enumerate(model.ancestor_names)
        if sums[j] >= threshold or node in above
    ]
    if 1.0 - food_total >= threshold:
        entries.append({"class": NON_FOOD_CLASS, "score": _score(1.0 - food_total)})
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
    anchors = [*COLOR_ANCHORS_RGB.items(), *COLOR_EXTRA_ANCHORS_RGB]
    anchors_lab = srgb_to_lab(np.array([rgb for _, rgb in anchors], dtype=np.uint8))
    word_of_anchor = np.array([_COLOR_NAMES.index(name) for name, _ in anchors], dtype=np.uint8)
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


def _color_entries(shares: np.ndarray, threshold: float) -> list[dict]:
    """Colour class dicts whose confidence reaches the threshold; colours with no share are left out even at 0."""
    confidence = color_confidence(shares)
    entries = [
        {"class": _COLOR_NAMES[i], "score": _score(confidence[i])}
        for i in np.flatnonzero((shares > 0.0) & (confidence >= threshold))
    ]
    return sorted(entries, key=_by_score)


def color_classes(image: Image.Image, threshold: float) -> list[dict]:
    """Whole-frame colour classes: each palette colour's share of the pixels as a confidence, >= threshold."""
    counts = np.bincount(palette_indices(image), minlength=len(_COLOR_NAMES))
    return _color_entries(counts / counts.sum(), threshold)


@dataclass(frozen=True)
class ColorSample:
    """An image's colours as the `default` classifier needs them, taken while it is decoded."""

    frame: np.ndarray  # palette index of each sampled pixel of the whole image
    crops: tuple[np.ndarray, ...]  # the same over each square the backbone sees (`spec.view_boxes`), row-major
    spread: float  # the largest per-channel standard deviation of the frame's sampled pixels (0..255): ~0 when blank

    @property
    def crop(self) -> np.ndarray:
        """The centre square's sample (the first view)."""
        return self.crops[0]


def color_sample(image: Image.Image, boxes: list[tuple[float, float, float, float]]) -> ColorSample:
    """Samples the whole image and each view box of it (about 1 ms for one view)."""
    frame = _thumbnail(image)
    spread = float(frame.reshape(-1, 3).astype(np.float32).std(axis=0).max())
    return ColorSample(_palette_of(frame), tuple(palette_indices(image, box) for box in boxes), spread)


def subject_leaves(leaf_scores: np.ndarray) -> list[int]:
    """The confident leaves whose evidence marks the subject: >= SUBJECT_MIN_SCORE, best first, at most MAX_SUBJECTS."""
    order = np.argsort(-leaf_scores, kind="stable")[:MAX_SUBJECTS]
    return [int(i) for i in order if leaf_scores[i] >= SUBJECT_MIN_SCORE]


def subject_weights(features: np.ndarray, weights: np.ndarray, bias: np.ndarray, leaves: list[int]) -> np.ndarray:
    """Per feature cell, 0..1: how strongly any subject leaf's class activation map points there."""
    maps = cell_logits(features, weights[leaves], bias[leaves])
    return np.max([minmax(m) for m in maps], axis=0)


def color_shares(sample: ColorSample, cell_weights: np.ndarray | None = None, view: int = 0) -> np.ndarray:
    """Each palette colour's share (0..1, sum 1): of the subject where `cell_weights` mark one, else of the frame.

    For a subject, pixels of that view's square count by the upsampled weights; a colour's share is what the
    subject holds beyond the rest of the square (the pavement around six dogs is in both), unless the
    two differ by less than MIN_SUBJECT_CONTRAST, when the subject's own shares are used. Its achromatic
    colours then count ACHROMATIC_SUBJECT_WEIGHT: a red motorcycle's tyres and engine outnumber its red paint.
    Without a subject: the frame's shares, less a plain background (`PLAIN_BACKGROUND_SHARE`).
    """
    count = len(_COLOR_NAMES)
    if cell_weights is None:
        return _frame_shares(sample.frame)
    edge = COLOR_THUMBNAIL_EDGE_PX
    crop = sample.crops[view]
    weight = upsample(cell_weights, edge, edge).reshape(-1).astype(np.float64)
    subject = np.bincount(crop, weights=weight, minlength=count) / max(weight.sum(), 1e-12)
    rest = np.bincount(crop, weights=1.0 - weight, minlength=count) / max((1.0 - weight).sum(), 1e-12)
    excess = np.maximum(subject - rest, 0.0)
    shares = excess / excess.sum() if excess.sum() >= MIN_SUBJECT_CONTRAST else subject
    toned = shares * np.where(_ACHROMATIC, ACHROMATIC_SUBJECT_WEIGHT, 1.0)
    return toned / toned.sum() if toned.sum() > 0 else shares


_ACHROMATIC = np.array([name in ACHROMATIC_COLORS for name in _COLOR_NAMES])


def _frame_shares(frame: np.ndarray) -> np.ndarray:
    """The frame's colour shares; on a plain background (its border mostly one colour), those of the rest."""
    count, edge = len(_COLOR_NAMES), COLOR_THUMBNAIL_EDGE_PX
    grid = frame.reshape(edge, edge)
    border = np.r_[grid[0], grid[-1], grid[1:-1, 0], grid[1:-1, -1]]
    background = int(np.bincount(border, minlength=count).argmax())
    border_share = float((border == background).mean())
    centre = grid[edge // 4 : -(edge // 4), edge // 4 : -(edge // 4)]
    figure = frame[frame != background]
    if (
        border_share >= PLAIN_BACKGROUND_SHARE
        and (centre == background).mean() <= border_share - PLAIN_BACKGROUND_CONTRAST
        and len(figure) >= MIN_FIGURE_SHARE * len(frame)
    ):
        frame = figure
    counts = np.bincount(frame, minlength=count)
    return counts / counts.sum()


def object_confidence(view_probabilities: np.ndarray, spread: float) -> float:
    """How far the image's object scores hold, 0..1: 0 for a blank frame (`MIN_PIXEL_SPREAD`) and for one whose best
    view spreads its ImageNet probability over many families (`IN_DOMAIN_ENTROPY_NATS`), else 1."""
    if spread < MIN_PIXEL_SPREAD:
        return 0.0
    views = _check_probabilities(view_probabilities)
    families = _family_sums() @ views.T  # families x views
    entropy = float((-(families * np.log(np.maximum(families, 1e-12))).sum(axis=0)).min())
    low, high = IN_DOMAIN_ENTROPY_NATS
    return float(np.clip((high - entropy) / (high - low), 0.0, 1.0))


@lru_cache(maxsize=1)
def _family_sums() -> sparse.csr_matrix:
    """(families x 1000) 0/1: which leaves each family (first RELATIVE_DEPTH hierarchy nodes) holds."""
    from scipy import sparse

    families = load_hierarchy().families
    leaves = np.arange(IMAGENET_CLASS_COUNT)
    return sparse.csr_matrix(
        (np.ones(IMAGENET_CLASS_COUNT), (families, leaves)), shape=(families.max() + 1, IMAGENET_CLASS_COUNT)
    )


def image_scores(
    probabilities: np.ndarray, window_probabilities: np.ndarray, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    """One image's (leaf, ancestor) scores as `default` answers them: `general_scores` times `object_confidence`."""
    leaves, ancestors = general_scores(probabilities, window_probabilities)
    confidence = object_confidence(probabilities, spread)
    return leaves * confidence, ancestors * confidence


def subject_view(view_probabilities: np.ndarray, leaves: list[int]) -> int:
    """The view (`spec.view_boxes`) where the first subject leaf scores best: its colours are read there."""
    return int(np.asarray(view_probabilities).reshape(-1, IMAGENET_CLASS_COUNT)[:, leaves[0]].argmax()) if leaves else 0


def subject_color_classes(
    sample: ColorSample,
    leaf_scores: np.ndarray,
    view_probabilities: np.ndarray,
    features: np.ndarray,
    fc: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> list[dict]:
    """Colour classes of one image: the subject's colours when a leaf is confident, else the whole frame's.

    `view_probabilities` and `features` hold every view's (views x 1000, views x channels x h x w).
    """
    leaves = subject_leaves(leaf_scores)
    if not leaves:
        return _color_entries(color_shares(sample), threshold)
    view = subject_view(view_probabilities, leaves)
    weights = subject_weights(features[view], *fc, leaves)
    return _color_entries(color_shares(sample, weights, view), threshold)


def general_classes(
    probabilities: np.ndarray,
    window_probabilities: np.ndarray,
    features: np.ndarray,
    sample: ColorSample,
    fc: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> list[dict]:
    """The `default` classifier's classes for one image (hierarchy and colours, >= threshold), highest first.

    Every argument but the colour sample, fc and threshold holds all the image's views (`spec.view_boxes`).
    """
    leaves, ancestors = image_scores(probabilities, window_probabilities, sample.spread)
    classes = _hierarchy_entries(leaves, ancestors, threshold)
    for color in subject_color_classes(sample, leaves, probabilities, features, fc, threshold):  # placed, not re-sorted
        bisect.insort(classes, color, key=_by_score)
    return classes
