"""Calibration on a task the backbone has not saturated: claimed numbers hold on images the heads never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.analysis.calibration import brier_score, expected_calibration_error, one_vs_rest, reliability
from workbench.analysis.training import normalise, train
from workbench.core.vocabulary import THRESHOLD

DIGITS_PER_CLASS = 60  # scikit-learn's handwritten digits: 10 classes, 8 x 8 pixels, upscaled past the 32 px minimum
DIGIT_SIDE_PX = 64
FACE_SIDE_PX = 100


@pytest.fixture(scope="module")
def digits(dogs) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and labels ("d0".."d9") of 60 images a digit, in a seeded random order."""
    from sklearn.datasets import load_digits

    wb, _ = dogs
    data = load_digits()
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.permutation(np.flatnonzero(data.target == k))[:DIGITS_PER_CLASS] for k in range(10)])
    images = [
        Image.fromarray((data.images[i] * 255 / 16).astype(np.uint8))
        .resize((DIGIT_SIDE_PX, DIGIT_SIDE_PX), Image.BILINEAR)
        .convert("RGB")
        for i in rows
    ]
    return wb.backbone.embed_images(images)[0], np.array([f"d{data.target[i]}" for i in rows])


@pytest.fixture(scope="module")
def faces(dogs) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's 100 faces and 100 non-faces (25 x 25 grey crops, upscaled): "face" / "other"."""
    import skimage

    wb, _ = dogs
    crops = np.load(Path(skimage.__file__).parent / "data" / "lfw_subset.npy")
    images = [
        Image.fromarray((crop * 255).astype(np.uint8))
        .resize((FACE_SIDE_PX, FACE_SIDE_PX), Image.BILINEAR)
        .convert("RGB")
        for crop in crops
    ]
    return wb.backbone.embed_images(images)[0], np.array(["face"] * 100 + ["other"] * 100)


def _split(labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train_rows = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)])
    return train_rows, np.setdiff1d(np.arange(len(labels)), train_rows)


def _precision(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> float:
    rows, columns = np.nonzero(scores >= THRESHOLD)
    return float(np.mean([labels[r] == classes[c] for r, c in zip(rows, columns, strict=True)]))


@pytest.mark.parametrize("per_class", [10, 20])
def test_claimed_precision_at_the_threshold_holds_on_held_out_images(digits, per_class) -> None:
    x, labels = digits
    classes = sorted(set(labels))
    claimed, held = [], []
    for seed in range(2):
        train_rows, test_rows = _split(labels, per_class, seed)
        result = train(x[train_rows], list(labels[train_rows]), classes)
        claimed.append(_precision(result.oof_scores, labels[train_rows], classes))
        held.append(_precision(result.heads.scores(x[test_rows]), labels[test_rows], classes))
    assert abs(np.mean(claimed) - np.mean(held)) <= 0.05, (claimed, held)


def test_held_out_scores_are_calibrated_and_the_version_says_so(digits) -> None:
    x, labels = digits
    classes = sorted(set(labels))
    train_rows, test_rows = _split(labels, 20, seed=3)
    result = train(x[train_rows], list(labels[train_rows]), classes)
    truth = one_vs_rest(list(labels[test_rows]), classes)
    held_ece = expected_calibration_error(result.heads.scores(x[test_rows]), truth)
    recorded = result.metrics["calibration"]
    assert held_ece < 0.05 and recorded["ece"] < 0.05
    assert recorded["cv_repeats"] == 3  # 20 images a class is few: cross-validation repeated
    assert sum(b["count"] for b in recorded["reliability"]) == len(train_rows) * len(classes)


@pytest.mark.parametrize("task", ["digits", "faces"])
@pytest.mark.parametrize("per_class", [10, 20])
def test_few_images_heads_beat_nearest_centroid_and_multinomial_logistic(request, task, per_class) -> None:
    from sklearn.linear_model import LogisticRegression

    x, labels = request.getfixturevalue(task)
    classes = sorted(set(labels))
    ours, centroid, multinomial = [], [], []
    for seed in range(2):
        train_rows, test_rows = _split(labels, per_class, seed)
        units, test_units = normalise(x[train_rows]), normalise(x[test_rows])
        scores = train(x[train_rows], list(labels[train_rows]), classes).heads.scores(x[test_rows])
        ours.append(np.mean(np.array(classes)[scores.argmax(axis=1)] == labels[test_rows]))
        centres = normalise(np.stack([units[labels[train_rows] == c].mean(axis=0) for c in classes]))
        centroid.append(np.mean(np.array(classes)[(test_units @ centres.T).argmax(axis=1)] == labels[test_rows]))
        model = LogisticRegression(max_iter=2000).fit(units, labels[train_rows])
        multinomial.append(np.mean(model.predict(test_units) == labels[test_rows]))
    assert np.mean(ours) >= max(np.mean(centroid), np.mean(multinomial)), (ours, centroid, multinomial)


def test_ece_and_brier_on_known_scores() -> None:
    classes = ["a"]
    labels = ["a", "", "a", ""]
    scores = np.array([[0.95], [0.05], [0.55], [0.45]])
    truth = one_vs_rest(labels, classes)
    # bins 9 (0.95, right), 0 (0.05, right), 5 (0.55, right), 4 (0.45, wrong: 0.45 vs 0)
    assert expected_calibration_error(scores, truth) == pytest.approx((0.05 + 0.05 + 0.45 + 0.45) / 4)
    assert brier_score(scores, truth) == pytest.approx((0.05**2 * 2 + 0.45**2 * 2) / 4)
    assert [b["count"] for b in reliability(scores, truth)] == [1, 0, 0, 0, 1, 1, 0, 0, 0, 1]
