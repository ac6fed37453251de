"""The `default` general classifier's scores: leaves and ancestors over every view, abstaining when out of domain.

The backbone gives 1000 ImageNet probabilities for each view of the image (the centre square, and
squares along the long side of a wide one: `spec.view_boxes`) and for each of their windows (the same
head on pooled 4x4-cell windows of the last feature map, one pass); this module turns them into
Watson v3 class dicts: leaves with a `type_hierarchy` (`hierarchy`), and their ancestors, with the
colour words of `subject_colors` placed among them. A leaf's whole-image score is its best view's.

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
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..core.vocabulary import SCORE_DECIMALS
from .class_entries import by_score, rounded_scores
from .colors import ColorSample
from .hierarchy import IMAGENET_CLASS_COUNT, check_probabilities, load_hierarchy
from .subject_colors import subject_color_classes

if TYPE_CHECKING:
    from scipy import sparse  # imported where the family sums are built: `workbench list` needs no SciPy (0.15 s)

# Abstaining (measured on 11 blank and noise images and 38 photos from scikit-image, scikit-learn, matplotlib and the
# tutorial's test folder): blank images sample a spread of 0 (a 3-level noise 3, the flattest photo 10), and
# out-of-domain images spread the best view's ImageNet probability over many families (entropy over the families of
# RELATIVE_DEPTH, in nats: blanks and noise 4.7-5.2, a moon, coins, a page, a blue gift box 3.4-4.4; photos with a
# known subject 0.3-2.9, dogs.jpg's six breeds 2.4). Object scores are scaled by a confidence falling from 1 to 0
# across that band, so those images answer no object class at 0.5; colours still answer (a blank red image is red).
MIN_PIXEL_SPREAD = 5.0  # a frame whose sampled pixels vary less (standard deviation, 0..255) is blank: no object
IN_DOMAIN_ENTROPY_NATS = (2.9, 3.3)  # family entropy below the first: object scores kept; above the second: zero


def general_scores(
    probabilities: np.ndarray, window_probabilities: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One image's (leaf scores (1000,), ancestor scores) from its views' and windows' ImageNet softmaxes.

    `probabilities` is (1000,) for one view or (views, 1000) for the squares of a wide image (`spec.view_boxes`):
    a leaf's whole-image score is its best view's. Without windows: those scores, and ancestors as their best
    view's summed leaves. With them, the multi-label rules of this module's docstring.
    """
    whole_views = check_probabilities(probabilities)
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
    """Each leaf's and each ancestor's place in the alphabetical order of all names (`by_score`'s last key)."""
    hierarchy = load_hierarchy()
    names = [*hierarchy.leaf_names, *hierarchy.ancestor_names]
    ranks = np.empty(len(names), np.int64)
    ranks[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    return ranks[: len(hierarchy.leaf_names)], ranks[len(hierarchy.leaf_names) :]


def _hierarchy_entries(scores: np.ndarray, ancestor_scores: np.ndarray, threshold: float) -> list[dict]:
    """Kept leaves and ancestors as class dicts in `by_score` order, sorted by numpy (at threshold 0.0 that is
    1,768 entries: a Python sort and numpy-scalar rounding per entry cost 11 ms an image, more than the backbone;
    `np.concatenate`, not `np.r_`, which costs 25 us a call)."""
    hierarchy = load_hierarchy()
    leaf_kept = np.flatnonzero(scores >= threshold)
    ancestor_kept = np.flatnonzero((ancestor_scores >= threshold) | hierarchy.leaf_in_ancestor[leaf_kept].any(axis=0))
    rounded = rounded_scores(np.concatenate([scores[leaf_kept], ancestor_scores[ancestor_kept]]))
    leaf_ranks, ancestor_ranks = _name_ranks()
    is_ancestor = np.concatenate([np.zeros(len(leaf_kept), np.int8), np.ones(len(ancestor_kept), np.int8)])
    ranks = np.concatenate([leaf_ranks[leaf_kept], ancestor_ranks[ancestor_kept]])
    order = np.lexsort((ranks, is_ancestor, -np.array(rounded)))
    n_leaves, names, types = len(leaf_kept), hierarchy.leaf_names, hierarchy.type_hierarchies
    kept = np.concatenate([leaf_kept, ancestor_kept]).tolist()
    return [
        {"class": names[kept[k]], "score": rounded[k], "type_hierarchy": types[kept[k]]}
        if k < n_leaves
        else {"class": hierarchy.ancestor_names[kept[k]], "score": rounded[k]}
        for k in order.tolist()
    ]


def object_confidence(view_probabilities: np.ndarray, spread: float) -> float:
    """How far the image's object scores hold, 0..1: 0 for a blank frame (`MIN_PIXEL_SPREAD`) and for one whose best
    view spreads its ImageNet probability over many families (`IN_DOMAIN_ENTROPY_NATS`), else 1."""
    if spread < MIN_PIXEL_SPREAD:
        return 0.0
    views = check_probabilities(view_probabilities)
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
        bisect.insort(classes, color, key=by_score)
    return classes
