"""Which training images deserve a second look: misclassified or borderline, from out-of-fold scores.

Pure analysis over `training.OutOfFold`; the notebook gallery shows what it finds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .plots import NEGATIVE_NAME, NO_CLASS_NAME
from .training import NEGATIVE_LABEL, THRESHOLD, OutOfFold, predicted_labels

BORDERLINE_MARGIN = 0.15  # a score this close to the threshold is borderline
COLUMNS = ["kind", "label", "predicted", "top_score", "true_class_score", "sha256", "source"]


def review_items(oof: OutOfFold, threshold: float = THRESHOLD, margin: float = BORDERLINE_MARGIN) -> pd.DataFrame:
    """Training images worth a look: `misclassified` (out-of-fold top class at the threshold is wrong)
    or `borderline` (right, but some score lies within `margin` of the threshold). Worst first."""
    predicted = predicted_labels(oof.scores, oof.classes, threshold)
    near = (np.abs(oof.scores - threshold) <= margin).any(axis=1) if len(oof.classes) else np.zeros(len(oof.labels), bool)
    rows = []
    for i, (label, guess) in enumerate(zip(oof.labels, predicted)):
        kind = "misclassified" if guess != label else "borderline" if near[i] else None
        if kind is None:
            continue
        true_score = float(oof.scores[i, oof.classes.index(label)]) if label != NEGATIVE_LABEL else 0.0
        rows.append({"kind": kind, "label": label or NEGATIVE_NAME, "predicted": guess or NO_CLASS_NAME,
                     "top_score": float(oof.scores[i].max(initial=0.0)), "true_class_score": true_score,
                     "sha256": oof.sha256[i], "source": oof.sources[i]})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["order"] = frame["kind"].map({"misclassified": 0, "borderline": 1})
    return frame.sort_values(["order", "true_class_score"], kind="stable").drop(columns="order").reset_index(drop=True)
