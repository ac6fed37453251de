"""Fitting per-class one-vs-rest heads on embeddings, and their cross-validated metrics.

A class's score is its calibrated logistic head times its familiarity gate (`familiarity`): the
head says which known class an image is closest to, the gate says whether it looks like that
class's training images at all, and the calibration (`calibration`, fitted on out-of-fold
logits) makes 0.9 mean right about nine times in ten.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..core.vocabulary import THRESHOLD
from .calibration import calibration_metrics, fit_platt, one_vs_rest, sigmoid
from .familiarity import Familiarity, fit_familiarity

NEGATIVE_LABEL = ""  # label of negative examples: they train every head but are never a class
# inverse L2 strength of each logistic head on L2-normalised embeddings (no standardising: with 10-20
# images a class, scaling 1,280 features by their noisy spread cost 3-8 points of accuracy on
# digits and faces; C=100 unscaled beat nearest centroid and multinomial logistic there)
HEAD_C = 100.0
CV_FOLDS = 5
FEW_IMAGES = 30  # below this many images in the smallest set, cross-validation is repeated...
CV_REPEATS_FEW = 3  # ...this many times with other splits, so held-out estimates are not one split's luck
SEED = 0
WARM_TOL = 1e-6  # L-BFGS tolerance of a warm-started head (a cold fit uses scikit-learn's 1e-4)
BLAS_THREADS = 1  # these fits are small: a multi-threaded BLAS only adds hand-offs (5-7x slower on 2 busy cores)


@dataclass(frozen=True)
class Heads:
    """One-vs-rest heads: score = sigmoid(weights . normalise(embedding) + bias) x familiarity gate.

    The calibration is folded into `weights` and `bias`. Heads saved before the gate existed load
    with `familiarity=None` and score as they always did.
    """

    classes: tuple[str, ...]
    weights: np.ndarray  # (classes, embedding size)
    bias: np.ndarray  # (classes,)
    familiarity: Familiarity | None = None

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Per-class scores in 0..1, independent across classes, shape (images, classes)."""
        units = normalise(embeddings)
        scores = sigmoid(units @ self.weights.T + self.bias)
        if self.familiarity is not None:
            scores = scores * self.familiarity.gate(units)
        return scores

    def to_bytes(self) -> bytes:
        """Serialises to .npz (plain arrays, no pickle)."""
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {
            "classes": np.array(self.classes, dtype=str),
            "weights": self.weights,
            "bias": self.bias,
        }
        if self.familiarity is not None:
            gate = self.familiarity
            arrays.update(centres=gate.centres, midpoint=gate.midpoint, width=gate.width)
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Heads:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            gate = None
            if "centres" in arrays.files:
                gate = Familiarity(arrays["centres"], arrays["midpoint"], arrays["width"])
            return cls(tuple(str(c) for c in arrays["classes"]), arrays["weights"], arrays["bias"], gate)


@dataclass(frozen=True)
class OutOfFold:
    """Every training image's held-out scores (images x classes) with its label, sha256 and source name.

    Stored beside each version's heads for plots, galleries and MLflow artifacts (plain .npz, no pickle).
    """

    classes: list[str]
    scores: np.ndarray
    labels: list[str]  # NEGATIVE_LABEL for negative examples
    sha256: list[str]
    sources: list[str]
    version: int | None = None  # the classifier version these scores belong to, when read from a store
    # the uncalibrated held-out logits and gates (repeats, images, classes) the scores came from, so the
    # next retrain can reuse them (`retraining`); None in files written before they were kept
    logits: np.ndarray | None = None
    gates: np.ndarray | None = None

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {
            "classes": np.array(self.classes, dtype=str),
            "scores": self.scores,
            "labels": np.array(self.labels, dtype=str),
            "sha256": np.array(self.sha256, dtype=str),
            "sources": np.array(self.sources, dtype=str),
        }
        if self.logits is not None and self.gates is not None:
            arrays.update(logits=self.logits, gates=self.gates)
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, version: int | None = None) -> OutOfFold:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            texts = {name: [str(x) for x in arrays[name]] for name in ("classes", "labels", "sha256", "sources")}
            kept = {name: arrays[name] for name in ("logits", "gates") if name in arrays.files}
            return cls(
                texts["classes"],
                arrays["scores"],
                texts["labels"],
                texts["sha256"],
                texts["sources"],
                version,
                kept.get("logits"),
                kept.get("gates"),
            )


@dataclass
class TrainingResult:
    """Fitted heads plus the cross-validated evidence of how good they are."""

    heads: Heads
    metrics: dict
    oof_scores: np.ndarray  # out-of-fold scores (images, classes), for plots
    labels: list[str] = field(default_factory=list)  # one per image; NEGATIVE_LABEL for negatives
    held_out: HeldOut | None = None  # the uncalibrated held-out logits and gates, kept for the next retrain

    def out_of_fold(self, sha256: list[str], sources: list[str]) -> OutOfFold:
        """What a version stores of its held-out evidence: scores, labels, images, and the logits and gates."""
        evidence = self.held_out
        return OutOfFold(
            list(self.heads.classes),
            self.oof_scores,
            self.labels,
            sha256,
            sources,
            logits=None if evidence is None else np.stack(evidence.logits),
            gates=None if evidence is None else np.stack(evidence.gates),
        )


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalises rows so heads see directions, not magnitudes."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


def fit_heads(
    embeddings: np.ndarray,
    labels: list[str],
    classes: list[str],
    calibration: tuple[float, float] = (1.0, 0.0),
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> Heads:
    """One logistic head per class (its positives against every other image), calibrated and gated.

    `calibration` is the Platt (slope, intercept) on the heads' logits, folded into weights and bias.
    `start` (uncalibrated weights and bias, one row per class) warm-starts L-BFGS from an earlier
    version's heads: the problem is strictly convex, so it ends at the same optimum; it is solved to
    WARM_TOL, closer to that optimum than a cold fit's default tolerance gets.
    """
    from sklearn.linear_model import LogisticRegression  # scikit-learn loads only to train (0.8 s)

    units = normalise(embeddings)
    label_array = np.asarray(labels)
    weights, bias = [], []
    for i, name in enumerate(classes):
        y = (label_array == name).astype(int)
        head = LogisticRegression(C=HEAD_C, class_weight="balanced", max_iter=5000, random_state=SEED)
        if start is not None:
            head.set_params(warm_start=True, tol=WARM_TOL)
            head.coef_, head.intercept_ = start[0][i : i + 1].astype(np.float64), start[1][i : i + 1].astype(np.float64)
        head.fit(units, y)
        weights.append(head.coef_[0])
        bias.append(head.intercept_[0])
    slope, intercept = calibration
    return Heads(
        tuple(classes),
        (slope * np.asarray(weights)).astype(np.float32),
        (slope * np.asarray(bias) + intercept).astype(np.float32),
        fit_familiarity(units, labels, classes),
    )


def predicted_labels(scores: np.ndarray, classes: list[str], threshold: float = THRESHOLD) -> list[str]:
    """The top class when it reaches the threshold, else the negative label."""
    top = scores.argmax(axis=1)
    return [classes[i] if scores[row, i] >= threshold else NEGATIVE_LABEL for row, i in enumerate(top)]


@dataclass(frozen=True)
class HeldOut:
    """Out-of-fold logits and familiarity gates, one (images, classes) pair of arrays per CV repeat."""

    logits: list[np.ndarray]
    gates: list[np.ndarray]

    def scores(self, calibration: tuple[float, float]) -> np.ndarray:
        """Calibrated, gated held-out scores, averaged over the repeats."""
        slope, intercept = calibration
        each = [sigmoid(slope * z + intercept) * g for z, g in zip(self.logits, self.gates, strict=True)]
        return np.mean(each, axis=0).astype(np.float32)


def cv_plan(labels: list[str]) -> tuple[int, int]:
    """Folds (CV_FOLDS, fewer when the smallest set is smaller) and repeats (CV_REPEATS_FEW when it is few)."""
    smallest = min(labels.count(label) for label in set(labels))
    return max(2, min(CV_FOLDS, smallest)), CV_REPEATS_FEW if smallest < FEW_IMAGES else 1


def kfold_record(labels: list[str]) -> dict:
    """What `cross_validate` did, for the version's metrics["cv"] and its MLflow params."""
    folds, repeats = cv_plan(labels)
    return {
        "scheme": "kfold",
        "folds": folds,
        "repeats": repeats,
        "cross_validated_images": len(labels),
        "reused_images": 0,
        "scored_by_previous_version": 0,
        "warm_start": False,
    }


def cross_validate(embeddings: np.ndarray, labels: list[str], classes: list[str]) -> HeldOut:
    """Out-of-fold logits and gates from stratified k-fold (k limited by the smallest set), repeated when few."""
    from sklearn.model_selection import StratifiedKFold

    folds, repeats = cv_plan(labels)
    held_out = HeldOut([], [])
    units = normalise(embeddings)  # once, not per fold
    for repeat in range(repeats):
        z = np.zeros((len(labels), len(classes)), np.float32)
        g = np.zeros_like(z)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED + repeat)
        for train, test in splitter.split(embeddings, labels):
            heads = fit_heads(embeddings[train], [labels[i] for i in train], classes)
            assert heads.familiarity is not None  # fit_heads always fits the gate
            z[test] = units[test] @ heads.weights.T + heads.bias  # before the sigmoid and the gate
            g[test] = heads.familiarity.gate(units[test])
        held_out.logits.append(z)
        held_out.gates.append(g)
    return held_out


def metrics_from_scores(scores: np.ndarray, labels: list[str], classes: list[str]) -> dict:
    """Accuracy, macro F1 and per-class precision / recall / F1 / ROC-AUC at the 0.5 threshold."""
    from sklearn.metrics import roc_auc_score

    predicted = predicted_labels(scores, classes)
    label_array = np.asarray(labels)
    per_class = {}
    for i, name in enumerate(classes):
        truth = label_array == name
        guess = scores[:, i] >= THRESHOLD
        hits = int(np.sum(truth & guess))  # counted here: scikit-learn's checks cost ~0.1 s a call
        per_class[name] = {
            "precision": _share(hits, int(guess.sum())),
            "recall": _share(hits, int(truth.sum())),
            "f1": _share(2 * hits, int(truth.sum() + guess.sum())),
            "roc_auc": float(roc_auc_score(truth, scores[:, i])) if 0 < truth.sum() < len(truth) else float("nan"),
            "positives": int(truth.sum()),
        }
    return {
        "accuracy": float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)])),
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        "per_class": per_class,
        "images": len(labels),
        "negatives": labels.count(NEGATIVE_LABEL),
    }


def _share(part: int, whole: int) -> float:
    """part / whole, 0.0 when whole is 0 (scikit-learn's zero_division=0)."""
    return part / whole if whole else 0.0


def unknown_metrics(heads: Heads, unknown: np.ndarray) -> dict:
    """How the version's classes score on unrelated images: the share given any class at 0.5, per class too."""
    scores = heads.scores(unknown)
    return {
        "images": len(unknown),
        "false_positive_rate": float(np.mean(scores.max(axis=1) >= THRESHOLD)),
        "max_score": float(scores.max()),
        "per_class": {name: float(np.mean(scores[:, i] >= THRESHOLD)) for i, name in enumerate(heads.classes)},
    }


def train(
    embeddings: np.ndarray, labels: list[str], classes: list[str], unknown: np.ndarray | None = None
) -> TrainingResult:
    """Cross-validates, calibrates on the held-out logits, then fits the final heads on every image.

    `unknown` holds embeddings of unrelated images (`unknown_images`): the version's metrics say how
    its classes score on them. BLAS runs on BLAS_THREADS threads.
    """
    with threadpool_limits(BLAS_THREADS):
        held_out = cross_validate(embeddings, labels, classes)
    return conclude(embeddings, labels, classes, held_out, kfold_record(labels), unknown)


def conclude(
    embeddings: np.ndarray,
    labels: list[str],
    classes: list[str],
    held_out: HeldOut,
    cv: dict,
    unknown: np.ndarray | None = None,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainingResult:
    """Calibrates on held-out logits (however they were made: `cv` says, into metrics["cv"]), measures, fits.

    The final heads are fitted on every image, warm-started from `start` when given (`fit_heads`).
    """
    with threadpool_limits(BLAS_THREADS):
        truth = one_vs_rest(labels, classes)
        calibration = fit_platt(np.concatenate(held_out.logits), np.concatenate([truth] * len(held_out.logits)))
        oof = held_out.scores(calibration)
        metrics = metrics_from_scores(oof, labels, classes)
        metrics["calibration"] = {
            **calibration_metrics(oof, labels, classes),
            "platt_slope": calibration[0],
            "platt_intercept": calibration[1],
            "cv_repeats": len(held_out.logits),
        }
        metrics["cv"] = cv
        heads = fit_heads(embeddings, labels, classes, calibration, start)
        if unknown is not None and len(unknown):
            metrics["unknown_images"] = unknown_metrics(heads, unknown)
    return TrainingResult(heads, metrics, oof, list(labels), held_out)
