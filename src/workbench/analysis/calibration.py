"""Whether a score means what it says: Platt scaling of the heads, reliability bins, ECE and Brier score.

Every class's score is one-vs-rest, so a (image, class) pair is one prediction: the score says how
likely the image is of that class. The calibration is fitted on out-of-fold logits (images the
heads never saw), one slope and intercept shared by every class: two numbers, so fitting them on
the same held-out scores the metrics are computed from adds almost no optimism, and few images a
class are enough.
"""

from __future__ import annotations

import numpy as np

RELIABILITY_BINS = 10  # equal-width score bins of the reliability diagram and the ECE
PLATT_C = 1e4  # near-unregularised: two parameters fitted on hundreds of held-out pairs


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function with the logits clipped, so float32 never overflows."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def one_vs_rest(labels: list[str], classes: list[str]) -> np.ndarray:
    """(images, classes) 0/1 truth: 1 where the image is of that class."""
    label_array = np.asarray(labels)
    return np.stack([label_array == name for name in classes], axis=1).astype(np.float64)


def fit_platt(logits: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) so that sigmoid(slope x logit + intercept) matches how often a pair is right."""
    from sklearn.linear_model import LogisticRegression

    flat_truth = truth.reshape(-1)
    if flat_truth.min() == flat_truth.max():  # one kind of pair only: nothing to calibrate against
        return 1.0, 0.0
    model = LogisticRegression(C=PLATT_C, max_iter=1000).fit(logits.reshape(-1, 1), flat_truth)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def reliability(scores: np.ndarray, truth: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    """Per score bin: its range, how many pairs, their mean score and how often they were right."""
    flat_scores, flat_truth = scores.reshape(-1), truth.reshape(-1)
    index = np.minimum((flat_scores * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": count,
                "mean_score": float(flat_scores[inside].mean()) if count else None,
                "fraction_right": float(flat_truth[inside].mean()) if count else None,
            }
        )
    return rows


def expected_calibration_error(scores: np.ndarray, truth: np.ndarray, bins: int = RELIABILITY_BINS) -> float:
    """ECE: the pair-weighted mean gap between a bin's mean score and how often its pairs were right."""
    total = scores.size
    return float(
        sum(
            row["count"] / total * abs(row["mean_score"] - row["fraction_right"])
            for row in reliability(scores, truth, bins)
            if row["count"]
        )
    )


def brier_score(scores: np.ndarray, truth: np.ndarray) -> float:
    """Mean squared gap between score and truth over every (image, class) pair: 0 is perfect."""
    return float(np.mean((scores - truth) ** 2))


def calibration_metrics(scores: np.ndarray, labels: list[str], classes: list[str]) -> dict:
    """ECE, Brier score and the reliability bins of held-out scores, for a version's metrics."""
    truth = one_vs_rest(labels, classes)
    return {
        "ece": expected_calibration_error(scores, truth),
        "brier": brier_score(scores, truth),
        "reliability": reliability(scores, truth),
    }
