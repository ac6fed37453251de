"""Fitting per-class one-vs-rest heads on embeddings, and their cross-validated metrics."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .vocabulary import THRESHOLD

NEGATIVE_LABEL = ""  # label of negative examples: they train every head but are never a class
HEAD_C = 0.5  # inverse L2 strength of each logistic head (on standardised, L2-normalised embeddings)
CV_FOLDS = 5
SEED = 0
BLAS_THREADS = 1  # these fits are small: a multi-threaded BLAS only adds hand-offs (5-7x slower on 2 busy cores)


@dataclass(frozen=True)
class Heads:
    """Linear one-vs-rest heads: score = sigmoid(weights . normalise(embedding) + bias), one per class."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (classes, embedding size)
    bias: np.ndarray  # (classes,)

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Per-class scores in 0..1, independent across classes, shape (images, classes)."""
        logits = normalise(embeddings) @ self.weights.T + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))

    def to_bytes(self) -> bytes:
        """Serialises to .npz (plain arrays, no pickle)."""
        buffer = io.BytesIO()
        np.savez(buffer, classes=np.array(self.classes, dtype=str), weights=self.weights, bias=self.bias)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Heads":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(tuple(str(c) for c in arrays["classes"]), arrays["weights"], arrays["bias"])


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

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer, classes=np.array(self.classes, dtype=str), scores=self.scores,
            labels=np.array(self.labels, dtype=str), sha256=np.array(self.sha256, dtype=str),
            sources=np.array(self.sources, dtype=str),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, version: int | None = None) -> "OutOfFold":
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            texts = {name: [str(x) for x in arrays[name]] for name in ("classes", "labels", "sha256", "sources")}
            return cls(texts["classes"], arrays["scores"], texts["labels"], texts["sha256"], texts["sources"], version)


@dataclass
class TrainingResult:
    """Fitted heads plus the cross-validated evidence of how good they are."""

    heads: Heads
    metrics: dict
    oof_scores: np.ndarray  # out-of-fold scores (images, classes), for plots
    labels: list[str] = field(default_factory=list)  # one per image; NEGATIVE_LABEL for negatives


def normalise(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalises rows so heads see directions, not magnitudes."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


def fit_heads(embeddings: np.ndarray, labels: list[str], classes: list[str]) -> Heads:
    """One logistic head per class: its positives against every other image (other classes and negatives)."""
    from sklearn.linear_model import LogisticRegression  # scikit-learn loads only to train (0.8 s)
    from sklearn.preprocessing import StandardScaler

    x = normalise(embeddings)
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    label_array = np.asarray(labels)
    weights, bias = [], []
    for name in classes:
        y = (label_array == name).astype(int)
        head = LogisticRegression(C=HEAD_C, class_weight="balanced", max_iter=2000, random_state=SEED)
        head.fit(xs, y)
        w = head.coef_[0] / scaler.scale_
        weights.append(w)
        bias.append(head.intercept_[0] - float(np.dot(w, scaler.mean_)))
    return Heads(tuple(classes), np.asarray(weights, np.float32), np.asarray(bias, np.float32))


def predicted_labels(scores: np.ndarray, classes: list[str], threshold: float = THRESHOLD) -> list[str]:
    """The top class when it reaches the threshold, else the negative label."""
    top = scores.argmax(axis=1)
    return [classes[i] if scores[row, i] >= threshold else NEGATIVE_LABEL for row, i in enumerate(top)]


def cross_validate(embeddings: np.ndarray, labels: list[str], classes: list[str]) -> np.ndarray:
    """Out-of-fold scores from stratified k-fold (k limited by the smallest set)."""
    from sklearn.model_selection import StratifiedKFold

    counts = [labels.count(label) for label in set(labels)]
    folds = max(2, min(CV_FOLDS, min(counts)))
    oof = np.zeros((len(labels), len(classes)), np.float32)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    for train, test in splitter.split(embeddings, labels):
        train_labels = [labels[i] for i in train]
        heads = fit_heads(embeddings[train], train_labels, classes)
        oof[test] = heads.scores(embeddings[test])
    return oof


def metrics_from_scores(scores: np.ndarray, labels: list[str], classes: list[str]) -> dict:
    """Accuracy, macro F1 and per-class precision / recall / F1 / ROC-AUC at the 0.5 threshold."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    predicted = predicted_labels(scores, classes)
    label_array = np.asarray(labels)
    per_class = {}
    for i, name in enumerate(classes):
        truth = label_array == name
        guess = scores[:, i] >= THRESHOLD
        per_class[name] = {
            "precision": float(precision_score(truth, guess, zero_division=0)),
            "recall": float(recall_score(truth, guess, zero_division=0)),
            "f1": float(f1_score(truth, guess, zero_division=0)),
            "roc_auc": float(roc_auc_score(truth, scores[:, i])) if 0 < truth.sum() < len(truth) else float("nan"),
            "positives": int(truth.sum()),
        }
    return {
        "accuracy": float(np.mean([p == t for p, t in zip(predicted, labels)])),
        "macro_f1": float(np.mean([m["f1"] for m in per_class.values()])),
        "per_class": per_class,
        "images": len(labels),
        "negatives": labels.count(NEGATIVE_LABEL),
    }


def train(embeddings: np.ndarray, labels: list[str], classes: list[str]) -> TrainingResult:
    """Cross-validates, then fits the final heads on every image (BLAS on BLAS_THREADS threads)."""
    with threadpool_limits(BLAS_THREADS):
        oof = cross_validate(embeddings, labels, classes)
        metrics = metrics_from_scores(oof, labels, classes)
        heads = fit_heads(embeddings, labels, classes)
    return TrainingResult(heads, metrics, oof, list(labels))
