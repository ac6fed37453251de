"""A two-version classifier for the promote tests, and its versions' own answers on images it never trained on.

`pets` v1 knows beagle and husky (10 images each), v2 adds goldenretriever (10 images): the two
versions answer differently on every held-out image, so an answer tells which version served it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DOGS_JPG, TUTORIAL
from workbench import Workbench

TRAIN_S = 300.0
TRAINED_IMAGES = 10  # per class: each class trains on the first 10 tutorial images
HELD_OUT = [  # images no version trained on
    *(path for name in ("beagle", "husky", "goldenretriever") for path in sorted((TUTORIAL / name).iterdir())[10:12]),
    *sorted((TUTORIAL / "test").glob("*.jpg")),
    DOGS_JPG,
]
SCORE_TOLERANCE = 1e-5


def small_sets(folder: Path, classes: tuple[str, ...], images: int = TRAINED_IMAGES) -> dict[str, Path]:
    """Folders of the first `images` tutorial images of each class (copied unaltered)."""
    sets = {}
    for name in classes:
        sets[name] = folder / name
        sets[name].mkdir(parents=True, exist_ok=True)
        for path in sorted((TUTORIAL / name).iterdir())[:images]:
            shutil.copyfile(path, sets[name] / path.name)
    return sets


def noise_set(folder: Path, seed: int, images: int = TRAINED_IMAGES) -> Path:
    """A folder of random-noise JPEGs no embedding cache has seen (a fresh seed, fresh images)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(images):
        pixels = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"noise-{seed}-{i}.jpg", quality=90)
    return folder


def scores_of(answer: dict, classifier_id: str) -> list[dict[str, float]]:
    """Per image, in order: class -> score of one classifier (classify at threshold 0 gives every class)."""
    found = []
    for image in answer["images"]:
        [result] = [r for r in image["classifiers"] if r["classifier_id"] == classifier_id]
        found.append({c["class"]: c["score"] for c in result["classes"]})
    return found


def held_out_scores(wb: Workbench, classifier_id: str) -> list[dict[str, float]]:
    return scores_of(wb.classify(HELD_OUT, classifier_ids=[classifier_id], threshold=0.0), classifier_id)


def same_scores(got: list[dict[str, float]], expected: list[dict[str, float]]) -> bool:
    """Whether two answers are one version's: the same classes per image, scores within SCORE_TOLERANCE."""
    return len(got) == len(expected) and all(
        g.keys() == e.keys() and all(abs(g[c] - e[c]) <= SCORE_TOLERANCE for c in g)
        for g, e in zip(got, expected, strict=True)
    )


@dataclass(frozen=True)
class Template:
    """A home holding `pets` (v1 and v2, v2 serving), and what each version answers on HELD_OUT."""

    home: Path
    classifier_id: str
    answers: dict[int, list[dict[str, float]]]
    sets: Path  # the folders it trained on, and room for more

    def copy(self, target: Path) -> Path:
        """A copy of the home for one test (nothing writes to the template once it is made)."""
        return Path(shutil.copytree(self.home, target))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> Template:
    folder = tmp_path_factory.mktemp("promote")
    sets = small_sets(folder / "sets", ("beagle", "husky", "goldenretriever"))
    wb = Workbench(folder / "home", embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    cid = wb.create_classifier("pets", {"beagle": sets["beagle"], "husky": sets["husky"]})["classifier_id"]
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    v1 = held_out_scores(wb, cid)
    wb.update_classifier(cid, positive_examples={"goldenretriever": sets["goldenretriever"]})
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    v2 = held_out_scores(wb, cid)
    assert {c for image in v1 for c in image} == {"beagle", "husky"}
    assert {c for image in v2 for c in image} == {"beagle", "husky", "goldenretriever"}
    return Template(folder / "home", cid, {1: v1, 2: v2}, folder / "sets")
