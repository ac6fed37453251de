"""Interpretation of a version's scores, as fastai users know it (`ClassificationInterpretation`).

Over scores (images x classes, independent one-vs-rest scores in 0..1) and the images' true labels:
the confusion matrix at a threshold, the pairs most often confused, the images with the highest
loss, and per-class precision, recall, false-positive rate and average precision. An image's
prediction is Watson's top class when it reaches the threshold, else none of the classes; negative
examples, and labels that are none of the classifier's classes, are "none of the classes" too:
one row and one column named `(none)`.

Everything that does not depend on the threshold is computed once, when the object is built:
per class, the sorted scores of its positives and of the rest; per (true class, top class) cell,
the sorted top scores; the losses; the average precision (scikit-learn). A new threshold then
costs a binary search per class and per cell, O((classes + cells) log n), so a slider can ask for
every number on each move. Pure computation: no files, no threads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from ..core.vocabulary import POSITIVE_SUFFIX, THRESHOLD
from .training import NEGATIVE_LABEL, OutOfFold

NONE_NAME = "(none)"  # the row and column of images that are, or are called, none of the classes
METRIC_COLUMNS = ["precision", "recall", "false_positive_rate", "average_precision", "positives"]
LOSS_COLUMNS = ["name", "actual", "predicted", "loss", "actual_score", "top_class", "top_score", "sha256"]
NEGATIVE_FOLDERS = frozenset({"negatives", "negative", "negative_examples", NONE_NAME})


def _none_name(classes: Sequence[str]) -> str:
    """`(none)`, or a variant of it when a class happens to carry that name."""
    name = NONE_NAME
    while name in classes:
        name += "*"
    return name


def _at_or_above(sorted_scores: np.ndarray, threshold: float) -> int:
    """How many of the ascending `sorted_scores` are >= threshold, compared exactly as `scores >= threshold` does
    (numpy compares a float32 array with a Python float in float32)."""
    dtype = np.result_type(sorted_scores.dtype, threshold)
    values = sorted_scores.astype(dtype, copy=False)
    return len(values) - int(np.searchsorted(values, dtype.type(threshold), side="left"))


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


@dataclass(frozen=True)
class _Cells:
    """Per (true class, top class) cell: the images' top scores, ascending (its count at t is how many reach t)."""

    rows: np.ndarray  # true-class index of each cell (len(classes) is none)
    columns: np.ndarray  # top-class index of each cell
    top_scores: list[np.ndarray]


class Interpretation:
    """What a version's scores say at a threshold: `confusion_matrix`, `most_confused`, `top_losses`, `metrics`.

    `labels` holds each image's true class; `NEGATIVE_LABEL` (negative examples) and any label that
    is not one of `classes` mean none of the classes. `names` (file names) and `sha256` identify
    images in `top_losses`. Build it from a version with `Interpretation.from_out_of_fold(oof)`
    (or `Workbench.interpretation(classifier_id)`).
    """

    def __init__(
        self,
        classes: Sequence[str],
        scores: np.ndarray,
        labels: Sequence[str],
        names: Sequence[str] | None = None,
        sha256: Sequence[str] | None = None,
        version: int | None = None,
    ) -> None:
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape != (len(labels), len(classes)):
            raise ValueError(f"scores must be (images, classes) = ({len(labels)}, {len(classes)}), got {scores.shape}")
        self.classes = list(classes)
        self.scores = scores
        self.none = _none_name(self.classes)
        self.names = list(names) if names is not None else [f"image_{i + 1}" for i in range(len(labels))]
        self.sha256 = list(sha256) if sha256 is not None else [""] * len(labels)
        self.version = version
        index = {name: i for i, name in enumerate(self.classes)}
        none = len(self.classes)
        self.actual_index = np.array([index.get(label, none) for label in labels], dtype=np.int64)
        self.actual = [self.classes[i] if i < none else self.none for i in self.actual_index]
        count = len(self.classes)
        self.top_index = scores.argmax(axis=1) if count else np.zeros(len(labels), np.int64)
        self.top_score = (
            scores[np.arange(len(labels)), self.top_index] if count else np.zeros(len(labels), scores.dtype)
        )
        self._positives = [np.sort(scores[self.actual_index == i, i]) for i in range(count)]
        self._rest = [np.sort(scores[self.actual_index != i, i]) for i in range(count)]
        self._cells = self._sorted_cells()
        self.losses = self._losses()
        self._loss_order = np.argsort(-self.losses, kind="stable")  # highest loss first; ties keep image order
        self.average_precision = self._average_precision()

    @classmethod
    def from_out_of_fold(cls, oof: OutOfFold) -> Interpretation:
        """A version's interpretation from its out-of-fold scores (each image scored by heads that never saw it)."""
        return cls(oof.classes, oof.scores, oof.labels, oof.sources, oof.sha256, oof.version)

    # ---------------------------------------------------------------- computed once
    def _sorted_cells(self) -> _Cells:
        count = len(self.classes)
        keys = self.actual_index * max(count, 1) + self.top_index
        order = np.argsort(keys, kind="stable")
        unique, starts = np.unique(keys[order], return_index=True)
        groups = np.split(order, starts[1:]) if len(order) else []
        return _Cells(unique // max(count, 1), unique % max(count, 1), [np.sort(self.top_score[g]) for g in groups])

    def _losses(self) -> np.ndarray:
        """Each image's log loss: the binary cross-entropy of its score for every class, averaged over the classes
        (the loss one-vs-rest heads are fitted on; fastai's `BCEWithLogitsLossFlat` averages the same way)."""
        if not self.classes:
            return np.zeros(len(self.actual), np.float64)
        truth = self.actual_index[:, None] == np.arange(len(self.classes))[None, :]
        eps = np.finfo(np.float64).eps
        p = np.clip(self.scores.astype(np.float64), eps, 1 - eps)
        return -np.where(truth, np.log(p), np.log1p(-p)).mean(axis=1)

    def _average_precision(self) -> dict[str, float]:
        """Per class, the area under its precision-recall curve over every threshold (NaN without positives)."""
        from sklearn.metrics import average_precision_score  # scikit-learn loads only here, once per version

        found = {}
        for i, name in enumerate(self.classes):
            truth = self.actual_index == i
            found[name] = float(average_precision_score(truth, self.scores[:, i])) if truth.any() else math.nan
        return found

    # ---------------------------------------------------------------- at a threshold
    def predicted(self, threshold: float = THRESHOLD) -> list[str]:
        """Each image's top class when it reaches the threshold, else `(none)`."""
        reached = self.top_score >= threshold
        return [self.classes[i] if hit else self.none for i, hit in zip(self.top_index, reached, strict=True)]

    def confusion_counts(self, threshold: float = THRESHOLD) -> np.ndarray:
        """(classes + 1) x (classes + 1) counts: true class by row, predicted class by column, `(none)` last."""
        count = len(self.classes)
        matrix = np.zeros((count + 1, count + 1), dtype=np.int64)
        for row, column, top in zip(self._cells.rows, self._cells.columns, self._cells.top_scores, strict=True):
            reached = _at_or_above(top, threshold)
            matrix[row, column] += reached
            matrix[row, count] += len(top) - reached
        return matrix

    def confusion_matrix(self, threshold: float = THRESHOLD) -> pd.DataFrame:
        """The confusion matrix at the threshold: index `actual`, columns `predicted`, both ending in `(none)`."""
        names = [*self.classes, self.none]
        return pd.DataFrame(
            self.confusion_counts(threshold),
            index=pd.Index(names, name="actual"),
            columns=pd.Index(names, name="predicted"),
        )

    def most_confused(self, min_count: int = 1, threshold: float = THRESHOLD) -> list[tuple[str, str, int]]:
        """(actual, predicted, count) for every off-diagonal cell with at least `min_count` images, most first."""
        matrix = self.confusion_counts(threshold)
        names = [*self.classes, self.none]
        pairs = [
            (names[r], names[c], int(matrix[r, c]))
            for r in range(len(names))
            for c in range(len(names))
            if r != c and matrix[r, c] >= max(min_count, 1)
        ]
        return sorted(pairs, key=lambda pair: -pair[2])

    def top_losses(self, k: int | None = None, threshold: float = THRESHOLD) -> pd.DataFrame:
        """The `k` images with the highest loss (all when `k` is None), highest first: file name, true and predicted
        class (at the threshold), loss, the score of the true class (NaN for `(none)`), top class and score.
        The index is each image's position in the scores (fastai's `top_losses` returns it too)."""
        order = self._loss_order[: k if k is not None else len(self.losses)]
        count = len(self.classes)
        predicted = {
            i: self.classes[self.top_index[i]] if count and self.top_score[i] >= threshold else self.none for i in order
        }
        rows = [
            {
                "name": self.names[i],
                "actual": self.actual[i],
                "predicted": predicted[i],
                "loss": float(self.losses[i]),
                "actual_score": float(self.scores[i, self.actual_index[i]])
                if self.actual_index[i] < count
                else math.nan,
                "top_class": self.classes[self.top_index[i]] if count else self.none,
                "top_score": float(self.top_score[i]) if count else math.nan,
                "sha256": self.sha256[i],
            }
            for i in order
        ]
        return pd.DataFrame(rows, columns=LOSS_COLUMNS, index=pd.Index(order, name="image"))

    def metric_values(self, threshold: float = THRESHOLD) -> np.ndarray:
        """`metrics` as a bare (classes, 5) array, columns as `METRIC_COLUMNS` (no DataFrame: for a slider)."""
        values = np.empty((len(self.classes), len(METRIC_COLUMNS)))
        for i, name in enumerate(self.classes):
            positives, rest = self._positives[i], self._rest[i]
            true_pos, false_pos = _at_or_above(positives, threshold), _at_or_above(rest, threshold)
            values[i] = (
                _ratio(true_pos, true_pos + false_pos),
                _ratio(true_pos, len(positives)),
                _ratio(false_pos, len(rest)),
                self.average_precision[name],
                len(positives),
            )
        return values

    def metrics(self, threshold: float = THRESHOLD) -> pd.DataFrame:
        """Per class at the threshold: precision, recall and false-positive rate of `score >= threshold` (one-vs-rest,
        as Watson returns every class that reaches it), average precision (over every threshold) and positives.

        Precision is NaN when no image reaches the threshold (nothing called), recall when the class has no
        positives, the false-positive rate when every image is the class's.
        """
        frame = pd.DataFrame(
            self.metric_values(threshold), index=pd.Index(self.classes, name="class"), columns=METRIC_COLUMNS
        )
        return frame.astype({"positives": int})

    def accuracy(self, threshold: float = THRESHOLD) -> float:
        """The share of images whose prediction at the threshold is their true class (or `(none)` for none)."""
        matrix = self.confusion_counts(threshold)
        return _ratio(int(np.trace(matrix)), int(matrix.sum()))


# ---------------------------------------------------------------- ground truth of classified images
def label_from_name(name: str, classes: Iterable[str], labels: Mapping[str, str] | None = None) -> str:
    """The true class of a classified image, from how the image is named, or `(none)`.

    `labels` (file name -> label, e.g. from `parse_labels`) wins. Otherwise the image's folders are
    read from the innermost out (`Workbench.classify` names a folder's images `folder/beagle/x.jpg`
    and a zip's `beagle_positive_examples.zip/x.jpg`): the first that names a class, once `.zip`
    and `_positive_examples` are cut, is its class; a `negatives` folder, or none that names a
    class, means none of the classes.
    """
    known = list(classes)
    path = PurePosixPath(name)
    if labels is not None and (path.name in labels or name in labels):
        label = labels.get(name, labels.get(path.name, ""))
        return label if label in known else _none_name(known)
    for folder in reversed(path.parts[:-1]):
        cut = folder.removesuffix(".zip").removesuffix(".ZIP").removesuffix(POSITIVE_SUFFIX)
        if cut in known:
            return cut
        if cut.lower() in NEGATIVE_FOLDERS:
            break
    return _none_name(known)


def parse_labels(text: str) -> dict[str, str]:
    """A labels file (`LABELS.txt`: one `file<TAB>label` a line, `#` comments): file name -> label.

    The label is the first word after the tab, so `1.jpg<TAB>cheetah (negative / cat family)` labels
    `1.jpg` as `cheetah`, which, being none of the classes, counts as `(none)`.
    """
    found = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "\t" not in line:
            continue
        name, label = line.split("\t", 1)
        words = label.split()
        found[name.strip()] = words[0] if words else NEGATIVE_LABEL
    return found
