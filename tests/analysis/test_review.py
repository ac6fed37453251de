"""review_items: the out-of-fold misclassified and borderline training images of the tutorial classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from workbench import plots
from workbench.analysis.review import average_precision, review_items, threshold_metrics
from workbench.analysis.training import NEGATIVE_LABEL, predicted_labels


def test_review_items_are_the_misclassified_and_near_threshold_images(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    assert oof.scores.shape == (len(oof.labels), len(oof.classes)) and oof.classes[-1] == "dalmatian"
    threshold, margin = 0.9, 0.3  # strict enough that some tutorial images are flagged
    items = review_items(oof, threshold, margin)
    wrong = [p != t for p, t in zip(predicted_labels(oof.scores, oof.classes, threshold), oof.labels, strict=True)]
    near = (np.abs(oof.scores - threshold) <= margin).any(axis=1)
    assert (items["kind"] == "misclassified").sum() == sum(wrong)
    assert (items["kind"] == "borderline").sum() == int((near & ~np.array(wrong)).sum())
    assert len(items) > 0 and set(items["sha256"]) <= set(oof.sha256)
    flagged_negatives = items["label"] == plots.NEGATIVE_NAME
    assert flagged_negatives.sum() <= oof.labels.count(NEGATIVE_LABEL)


def test_nothing_to_review_at_a_loose_threshold_gives_an_empty_frame_with_columns(dogs):
    wb, cid = dogs
    items = review_items(wb.out_of_fold(cid), threshold=0.5, margin=0.0)
    assert list(items.columns) == [
        "kind",
        "label",
        "predicted",
        "top_class",
        "top_score",
        "true_class_score",
        "sha256",
        "source",
    ]
    assert set(items["kind"]) <= {"misclassified"}


def test_a_near_miss_keeps_its_top_class_and_score(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    items = review_items(oof, threshold=0.9, margin=0.3)
    below = items[items["predicted"] == plots.NO_CLASS_NAME]
    assert len(below) > 0  # at 0.9 some tutorial images reach no class at all
    for row in below.itertuples():
        scores = oof.scores[oof.sha256.index(row.sha256)]
        assert row.top_class == oof.classes[int(np.argmax(scores))] and row.top_score == pytest.approx(scores.max())
        assert row.top_score < 0.9


def test_average_precision_is_sklearns_per_class(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    ap = average_precision(oof)
    assert list(ap) == oof.classes
    for i, name in enumerate(oof.classes):
        truth = np.asarray(oof.labels) == name
        assert (
            ap[name] == pytest.approx(average_precision_score(truth, oof.scores[:, i]))
            and 0.5 < ap[name] <= 1.0 + 1e-12
        )


def test_threshold_metrics_at_half_match_the_stored_training_metrics(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    stored = wb.versions(cid)[-1]["metrics"]["per_class"]
    table = threshold_metrics(oof, 0.5)
    assert list(table.index) == oof.classes
    for name in oof.classes:
        assert table.loc[name, "precision"] == pytest.approx(stored[name]["precision"])
        assert table.loc[name, "recall"] == pytest.approx(stored[name]["recall"])
        assert table.loc[name, "positives"] == stored[name]["positives"]
        others = np.asarray(oof.labels) != name
        i = oof.classes.index(name)
        assert table.loc[name, "false_positive_rate"] == pytest.approx((oof.scores[others, i] >= 0.5).mean())


def test_threshold_metrics_above_every_score_call_nothing(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    table = threshold_metrics(oof, float(oof.scores.max()) + 0.01)
    assert table["precision"].isna().all()  # nothing called: no precision, as Custom Vision leaves it blank
    assert (table["recall"] == 0).all() and (table["false_positive_rate"] == 0).all()
