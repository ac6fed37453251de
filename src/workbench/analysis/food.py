"""The `food` model: ImageNet's food leaves with their hierarchy, scored as `default` scores them, or `non-food`.

Its leaves are those under the packaged hierarchy's top nodes that WordNet files under "food, nutrient"
(n00021265, an umbrella the hierarchy drops) and "food, solid food" (n07555863, named `food` there): dishes,
courses, bread, fruit, vegetables, sauces, drinks. Not fare (its one leaf, `menu`, is ImageNet's printed menu
cards) nor feed (`hay`: fodder). Plus `corn` and `ear` (of corn), which WordNet files under plant parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..core.vocabulary import NON_FOOD_CLASS
from .class_entries import by_score, watson_score
from .general import image_scores, object_confidence
from .hierarchy import IMAGENET_CLASS_COUNT, check_probabilities, load_hierarchy

if TYPE_CHECKING:
    from scipy import sparse  # imported where the food model is built: `workbench list` needs no SciPy (0.15 s)

FOOD_ROOTS = ("food", "nutriment", "foodstuff", "beverage")
FOOD_EXTRA_LEAVES = ("corn", "ear")


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
            check_probabilities(probabilities),
            np.asarray(window_probabilities, dtype=np.float64).reshape(-1, IMAGENET_CLASS_COUNT),
        ]
    )
    sums = np.minimum((model.sums @ views.T).max(axis=1), 1.0) * confidence
    food_total = float(sums[-1])  # never below a food leaf's score: it sums each leaf's best view or window
    kept = [int(i) for i in model.leaves[leaves[model.leaves] >= threshold]]
    above = {node for i in kept for node in hierarchy.type_hierarchies[i].split("/")[1:-1]}
    entries = [
        {
            "class": hierarchy.leaf_names[i],
            "score": watson_score(leaves[i]),
            "type_hierarchy": hierarchy.type_hierarchies[i],
        }
        for i in kept
    ]
    entries += [
        {"class": node, "score": watson_score(sums[j])}
        for j, node in enumerate(model.ancestor_names)
        if sums[j] >= threshold or node in above
    ]
    if 1.0 - food_total >= threshold:
        entries.append({"class": NON_FOOD_CLASS, "score": watson_score(1.0 - food_total)})
    return sorted(entries, key=by_score)
