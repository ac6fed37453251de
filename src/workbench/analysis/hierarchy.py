"""The packaged ImageNet names and WordNet hierarchy the `default` and `food` models answer with.

`data/imagenet_hierarchy.json` (built by tools/build_general_data.py) gives each of the 1000 ImageNet
classes a unique readable name and ONE WordNet path; this module reads it once and indexes it for
vectorised scoring: which leaves lie under each ancestor, and which leaves are close relatives
(the same first RELATIVE_DEPTH nodes, e.g. two dog breeds).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse  # imported where the hierarchy is built: `workbench list` needs no SciPy (0.15 s)

IMAGENET_CLASS_COUNT = 1000
HIERARCHY_RESOURCE = (
    "data",
    "imagenet_hierarchy.json",
)  # under package workbench; built by tools/build_general_data.py
RELATIVE_DEPTH = 3  # leaves sharing their first 3 hierarchy nodes (/animal/domestic animal/dog) are close relatives


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


def check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """(1000,) or (views, 1000) ImageNet probabilities -> (views, 1000) float64; ValueError for any other shape."""
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.ndim not in (1, 2) or scores.shape[-1] != IMAGENET_CLASS_COUNT or scores.size == 0:
        raise ValueError(f"expected {IMAGENET_CLASS_COUNT} probabilities, got shape {np.shape(probabilities)}")
    return scores.reshape(-1, IMAGENET_CLASS_COUNT)
