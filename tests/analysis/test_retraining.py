"""Retraining on real embeddings: reused held-out evidence, warm-started heads, and when it falls back to full."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import TUTORIAL
from workbench.analysis.retraining import Previous, retrain, reuse_rows
from workbench.analysis.training import NEGATIVE_LABEL, OutOfFold, TrainingResult, normalise, train

ADDED_EVERY = 20  # every 20th tutorial image is "new" in the retrain: 12 of 250, in every class


@pytest.fixture(scope="module")
def tutorial_set(dogs) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """The stored tutorial examples' embeddings, labels ("" for negatives), sha256s and classes."""
    wb, cid = dogs
    rows = wb.store.examples(cid)
    vectors = wb.engine.open().cache.get_many([r.sha256 for r in rows], wb.backbone.backbone_id)
    labels = [r.class_name or NEGATIVE_LABEL for r in rows]
    classes = list(dict.fromkeys(r.class_name for r in rows if r.class_name))
    return np.stack([vectors[r.sha256] for r in rows]), labels, [r.sha256 for r in rows], classes


@pytest.fixture(scope="module")
def test_images(dogs) -> np.ndarray:
    """Embeddings of the tutorial's test images, which no training here sees."""
    wb, _ = dogs
    pictures = [Image.open(path).convert("RGB") for path in sorted((TUTORIAL / "test").glob("*.jpg"))]
    vectors, _ = wb.backbone.embed_images(pictures)
    return np.asarray(vectors)


def previous_of(result: TrainingResult, sha256: list[str]) -> Previous:
    """What the runner would read back of a stored version trained to `result`."""
    calibration = result.metrics["calibration"]
    held_out = result.out_of_fold(sha256, sha256)
    assert held_out.logits is not None
    stored = OutOfFold.from_bytes(held_out.to_bytes())  # through the file format the runner writes
    return Previous(
        result.heads, (calibration["platt_slope"], calibration["platt_intercept"]), stored, result.metrics["cv"]
    )


def split(tutorial_set):
    x, labels, sha256, classes = tutorial_set
    old = np.array([i % ADDED_EVERY != ADDED_EVERY - 1 for i in range(len(labels))])
    pick = lambda items: [item for item, keep in zip(items, old, strict=True) if keep]  # noqa: E731
    previous = previous_of(train(x[old], pick(labels), classes), pick(sha256))
    return x, labels, sha256, classes, old, previous


def test_a_retrain_that_adds_images_reuses_held_out_evidence_honestly(tutorial_set) -> None:
    x, labels, sha256, classes, old, previous = split(tutorial_set)
    result = retrain(x, labels, sha256, classes, previous, min_images=0)
    cv = result.metrics["cv"]
    assert cv["scheme"] == "reused" and cv["warm_start"] is True
    assert cv["reused_images"] == int(old.sum()) and cv["scored_by_previous_version"] == int((~old).sum()) == 12
    assert cv["cross_validated_images"] == int(old.sum()) and cv["repeats"] == len(previous.out_of_fold.logits)
    assert result.held_out is not None
    logits = result.held_out.logits[0]
    # kept images: the previous fold heads' logits, untouched
    np.testing.assert_array_equal(logits[old], previous.out_of_fold.logits[0])
    # new images: the previous final heads' raw logits, which never trained on them
    weights, bias = previous.raw()
    np.testing.assert_allclose(logits[~old], normalise(x[~old]) @ weights.T + bias, atol=1e-4)
    assert not set(np.asarray(sha256)[~old]) & set(previous.out_of_fold.sha256)  # which never saw them
    assert result.metrics["images"] == len(labels) and result.metrics["accuracy"] >= 0.9


def test_warm_started_heads_agree_with_a_full_training_on_held_out_images(tutorial_set, test_images) -> None:
    x, labels, sha256, classes, _, previous = split(tutorial_set)
    reused = retrain(x, labels, sha256, classes, previous, min_images=0)
    full = train(x, labels, classes)
    assert full.metrics["cv"]["scheme"] == "kfold"
    difference = np.abs(reused.heads.scores(test_images) - full.heads.scores(test_images)).max()
    assert difference <= 0.05, f"max score difference {difference:.4f} on the tutorial test images"
    calibrated = reused.metrics["calibration"], full.metrics["calibration"]
    assert abs(calibrated[0]["ece"] - calibrated[1]["ece"]) <= 0.05
    assert reused.metrics["accuracy"] == pytest.approx(full.metrics["accuracy"], abs=0.03)


def test_a_removed_or_relabelled_image_or_a_small_set_cross_validates_in_full(tutorial_set) -> None:
    x, labels, sha256, classes, old, previous = split(tutorial_set)
    assert reuse_rows(previous, labels, sha256, classes) is None  # 237 images: under REUSE_MIN_IMAGES
    assert reuse_rows(previous, labels, sha256, classes, min_images=0) is not None
    relabelled = list(labels)
    first_old = int(np.flatnonzero(old)[0])
    relabelled[first_old] = next(c for c in classes if c != labels[first_old])
    assert reuse_rows(previous, relabelled, sha256, classes, min_images=0) is None
    removed = np.arange(len(labels)) != first_old
    kept = [s for s, keep in zip(sha256, removed, strict=True) if keep]
    assert reuse_rows(previous, [labels[i] for i in np.flatnonzero(removed)], kept, classes, min_images=0) is None
    assert reuse_rows(previous, labels, sha256, classes, min_images=0, growth=0.02) is None  # 250 > 1.02 x 238
    full = retrain(x, relabelled, sha256, classes, previous, min_images=0)
    again = train(x, relabelled, classes)
    assert full.metrics["cv"] == again.metrics["cv"] and full.metrics["cv"]["scheme"] == "kfold"
    np.testing.assert_array_equal(full.heads.weights, again.heads.weights)  # exactly a full training
