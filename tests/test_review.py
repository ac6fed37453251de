"""review_items: the out-of-fold misclassified and borderline training images of the tutorial classifier."""

from __future__ import annotations

import numpy as np

from workbench import plots
from workbench.review import review_items
from workbench.training import NEGATIVE_LABEL, predicted_labels


def test_review_items_are_the_misclassified_and_near_threshold_images(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    assert oof.scores.shape == (len(oof.labels), len(oof.classes)) and oof.classes[-1] == "dalmatian"
    threshold, margin = 0.9, 0.3  # strict enough that some tutorial images are flagged
    items = review_items(oof, threshold, margin)
    wrong = [p != t for p, t in zip(predicted_labels(oof.scores, oof.classes, threshold), oof.labels)]
    near = (np.abs(oof.scores - threshold) <= margin).any(axis=1)
    assert (items["kind"] == "misclassified").sum() == sum(wrong)
    assert (items["kind"] == "borderline").sum() == int((near & ~np.array(wrong)).sum())
    assert len(items) > 0 and set(items["sha256"]) <= set(oof.sha256)
    flagged_negatives = items["label"] == plots.NEGATIVE_NAME
    assert flagged_negatives.sum() <= oof.labels.count(NEGATIVE_LABEL)


def test_nothing_to_review_at_a_loose_threshold_gives_an_empty_frame_with_columns(dogs):
    wb, cid = dogs
    items = review_items(wb.out_of_fold(cid), threshold=0.5, margin=0.0)
    assert list(items.columns) == ["kind", "label", "predicted", "top_score", "true_class_score", "sha256", "source"]
    assert set(items["kind"]) <= {"misclassified"}
