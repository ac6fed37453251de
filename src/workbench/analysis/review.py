"""What a version's out-of-fold scores say: images that deserve a second look, and per-class quality numbers.

Pure analysis over `training.OutOfFold` (scikit-learn metrics, no I/O); the notebook gallery and
threshold plots show what it finds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from ..core.vocabulary import THRESHOLD
from .calibration import brier_score, expected_calibration_error, one_vs_rest
from .interpretation import Interpretation
from .plots import NEGATIVE_NAME, NO_CLASS_NAME
from .training import NEGATIVE_LABEL, OutOfFold, predicted_labels

BORDERLINE_MARGIN = 0.15  # a score this close to the threshold is borderline
COLUMNS = ["kind", "label", "predicted", "top_class", "top_score", "true_class_score", "sha256", "source"]


def review_items(oof: OutOfFold, threshold: float = THRESHOLD, margin: float = BORDERLINE_MARGIN) -> pd.DataFrame:
    """Training images worth a look: `misclassified` (out-of-fold top class at the threshold is wrong)
    or `borderline` (right, but some score lies within `margin` of the threshold). Worst first.

    `predicted` is Watson's answer at the threshold (`NO_CLASS_NAME` when no score reaches it);
    `top_class` / `top_score` are the best-scoring class whatever the threshold, so a near miss shows its class.
    """
    predicted = predicted_labels(oof.scores, oof.classes, threshold)
    near = np.zeros(len(oof.labels), bool)
    if len(oof.classes):
        near = np.asarray((np.abs(oof.scores - threshold) <= margin).any(axis=1))
    rows = []
    for i, (label, guess) in enumerate(zip(oof.labels, predicted, strict=True)):
        kind = "misclassified" if guess != label else "borderline" if near[i] else None
        if kind is None:
            continue
        true_score = float(oof.scores[i, oof.classes.index(label)]) if label != NEGATIVE_LABEL else 0.0
        top = int(oof.scores[i].argmax()) if len(oof.classes) else None
        rows.append(
            {
                "kind": kind,
                "label": label or NEGATIVE_NAME,
                "predicted": guess or NO_CLASS_NAME,
                "top_class": oof.classes[top] if top is not None else NO_CLASS_NAME,
                "top_score": float(oof.scores[i, top]) if top is not None else 0.0,
                "true_class_score": true_score,
                "sha256": oof.sha256[i],
                "source": oof.sources[i],
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["order"] = frame["kind"].map({"misclassified": 0, "borderline": 1})
    return frame.sort_values(["order", "true_class_score"], kind="stable").drop(columns="order").reset_index(drop=True)


def average_precision(oof: OutOfFold) -> dict[str, float]:
    """Per class, the area under its precision-recall curve over every threshold (sklearn's average precision).

    One number per class that does not depend on the threshold; NaN for a class without positives.
    """
    labels = np.asarray(oof.labels)
    found = {}
    for i, name in enumerate(oof.classes):
        truth = labels == name
        found[name] = float(average_precision_score(truth, oof.scores[:, i])) if truth.any() else float("nan")
    return found


def threshold_metrics(oof: OutOfFold, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Per class at `threshold`: precision, recall and false-positive rate of `score >= threshold`
    (one-vs-rest, as Watson returns every class at or above the threshold), plus average precision.

    Precision is NaN when no image reaches the threshold (nothing was called), like Azure Custom Vision's blank.
    A slider that asks again and again keeps one `Interpretation` (`interpretation`) and calls its `metrics`.
    """
    return Interpretation.from_out_of_fold(oof).metrics(threshold)


def calibration_summary(oof: OutOfFold) -> tuple[float, float]:
    """(ECE, Brier score) of a version's held-out scores over every (image, class) pair."""
    truth = one_vs_rest(oof.labels, oof.classes)
    return expected_calibration_error(oof.scores, truth), brier_score(oof.scores, truth)
