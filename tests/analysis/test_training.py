"""One-vs-rest heads on real embeddings: scores, serialisation without pickle, cross-validated metrics."""

from __future__ import annotations

import io

import numpy as np
import pytest

from workbench.analysis.training import (
    NEGATIVE_LABEL,
    Heads,
    OutOfFold,
    cross_validate,
    fit_heads,
    metrics_from_scores,
    predicted_labels,
    train,
)


@pytest.fixture(scope="module")
def tutorial_embeddings(dogs) -> tuple[np.ndarray, list[str], list[str]]:
    """The stored tutorial examples' embeddings, labels ("" for negatives) and classes."""
    wb, cid = dogs
    rows = wb.store.examples(cid)
    cache = wb.engine.open().cache
    vectors = cache.get_many([r.sha256 for r in rows], wb.backbone.backbone_id)
    labels = [r.class_name or NEGATIVE_LABEL for r in rows]
    classes = list(dict.fromkeys(r.class_name for r in rows if r.class_name))
    return np.stack([vectors[r.sha256] for r in rows]), labels, classes


def test_heads_score_their_own_positives_high(tutorial_embeddings) -> None:
    x, labels, classes = tutorial_embeddings
    scores = train(x, labels, classes).heads.scores(x)
    assert scores.shape == (250, 4) and scores.min() >= 0.0 and scores.max() <= 1.0
    assert predicted_labels(scores, classes) == labels


def test_heads_round_trip_through_npz_without_pickle(tutorial_embeddings) -> None:
    x, labels, classes = tutorial_embeddings
    heads = fit_heads(x, labels, classes)
    again = Heads.from_bytes(heads.to_bytes())
    assert again.classes == tuple(classes)
    np.testing.assert_array_equal(again.scores(x), heads.scores(x))
    with np.load(io.BytesIO(heads.to_bytes()), allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_cross_validated_scores_are_out_of_fold(tutorial_embeddings) -> None:
    x, labels, classes = tutorial_embeddings
    result = train(x, labels, classes)
    oof, in_sample = result.oof_scores, result.heads.scores(x)
    metrics = metrics_from_scores(oof, labels, classes)
    assert 0.9 <= metrics["accuracy"] <= 1.0
    assert not np.allclose(oof, in_sample)  # held-out scores differ from scores on seen images
    assert all(m["roc_auc"] > 0.95 for m in metrics["per_class"].values())


def test_metrics_on_known_scores() -> None:
    classes = ["a", "b"]
    labels = ["a", "a", "b", NEGATIVE_LABEL]
    scores = np.array([[0.9, 0.1], [0.4, 0.2], [0.2, 0.8], [0.7, 0.1]])
    metrics = metrics_from_scores(scores, labels, classes)
    # predicted: a, negative (nothing >= 0.5), b, a
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["per_class"]["a"]["precision"] == pytest.approx(0.5)
    assert metrics["per_class"]["a"]["recall"] == pytest.approx(0.5)
    assert metrics["per_class"]["b"]["f1"] == pytest.approx(1.0)
    assert metrics["negatives"] == 1 and metrics["images"] == 4


def test_out_of_fold_scores_round_trip_without_pickle(tutorial_embeddings) -> None:
    x, labels, classes = tutorial_embeddings
    held_out = OutOfFold(
        classes,
        cross_validate(x, labels, classes).scores((1.0, 0.0)),
        labels,
        [f"{i:064x}" for i in range(len(labels))],
        [f"set.zip/{i}.jpg" for i in range(len(labels))],
    )
    again = OutOfFold.from_bytes(held_out.to_bytes())
    np.testing.assert_array_equal(again.scores, held_out.scores)
    assert (again.classes, again.labels, again.sha256, again.sources) == (
        held_out.classes,
        held_out.labels,
        held_out.sha256,
        held_out.sources,
    )
