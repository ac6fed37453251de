"""Retraining that costs what the new images cost: reused held-out logits and warm-started heads.

A full training cross-validates: every head is refitted `folds` times (x repeats) on the whole set,
so adding 10 images to 10,000 would pay for 10,000 again. When a retrain only adds images to the
version before it (`reuse_rows` says when), the held-out evidence is extended instead of redone:

- an image already in the previous version keeps that version's held-out logit and gate: the
  fold heads that made them never trained on it, so it is still judged on a head that never saw it;
- a new image is scored by the previous version's final heads (uncalibrated) and gate, which
  never saw it either;
- the Platt calibration and the metrics are then computed afresh on those held-out logits, and the
  final heads are refitted on every image, warm-started from the previous heads (`fit_heads`).

Held-out estimates stay honest (every score is of an image its head did not train on), but they
come from heads trained on slightly fewer images than the final one. To keep that gap bounded a
full cross-validation runs again once the set has grown by REUSE_GROWTH since the last one, so its
cost, spread over the images added meanwhile, is a constant per new image. Small sets (under
REUSE_MIN_IMAGES) always cross-validate in full: it costs about a second there. A version's
metrics["cv"] (and its MLflow params `cv_*`) record which was done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .training import (
    BLAS_THREADS,
    Heads,
    HeldOut,
    OutOfFold,
    TrainingResult,
    conclude,
    cv_plan,
    normalise,
    train,
)

REUSE_MIN_IMAGES = 1000  # below this many images in the previous version, a retrain cross-validates in full
REUSE_GROWTH = 0.1  # a full cross-validation again once the set is this share larger than the last one


@dataclass(frozen=True)
class Previous:
    """What a retrain reuses of the version before it: its heads, their calibration, its held-out evidence."""

    heads: Heads  # calibrated (slope and intercept folded in)
    calibration: tuple[float, float]  # the Platt (slope, intercept) folded into `heads`
    out_of_fold: OutOfFold  # with its logits and gates
    cv: dict  # its metrics["cv"]; versions older than the record count as a full cross-validation

    def raw(self) -> tuple[np.ndarray, np.ndarray]:
        """The heads' uncalibrated weights and bias (the Platt scaling undone)."""
        slope, intercept = self.calibration
        return self.heads.weights / slope, (self.heads.bias - intercept) / slope

    def cross_validated_images(self) -> int:
        """How many images the last full cross-validation behind this version saw."""
        return int(self.cv.get("cross_validated_images", len(self.out_of_fold.labels)))


def reuse_rows(
    previous: Previous,
    labels: list[str],
    sha256: list[str],
    classes: list[str],
    min_images: int = REUSE_MIN_IMAGES,
    growth: float = REUSE_GROWTH,
) -> np.ndarray | None:
    """Each image's row in the previous held-out evidence (-1 for a new image), or None when it cannot be reused.

    Reuse needs the same classes, every previous (image, label) still there, at least one new image,
    at least `min_images` before, at most `growth` more than the last full cross-validation saw, and
    a calibration that can be undone (a positive slope).
    """
    oof = previous.out_of_fold
    if oof.logits is None or oof.gates is None or list(oof.classes) != list(classes):
        return None
    if previous.calibration[0] <= 0 or len(oof.labels) < min_images:
        return None
    if len(labels) > (1 + growth) * previous.cross_validated_images():
        return None
    where = {(sha, label): row for row, (sha, label) in enumerate(zip(oof.sha256, oof.labels, strict=True))}
    rows = np.array([where.get((sha, label), -1) for sha, label in zip(sha256, labels, strict=True)])
    kept = rows[rows >= 0]
    if len(kept) != len(where) or len(np.unique(kept)) != len(kept) or len(kept) == len(rows):
        return None  # an image removed or relabelled (or nothing new): cross-validate in full
    return rows


def extended_held_out(previous: Previous, rows: np.ndarray, embeddings: np.ndarray) -> HeldOut:
    """The previous held-out logits and gates for kept images; the previous final heads' for new ones."""
    oof = previous.out_of_fold
    assert oof.logits is not None and oof.gates is not None  # reuse_rows checked
    new = rows < 0
    units = normalise(embeddings[new])
    weights, bias = previous.raw()
    new_logits = units @ weights.T + bias
    gate = previous.heads.familiarity  # None in heads saved before the gate: every image passes, as they scored
    new_gates = gate.gate(units) if gate is not None else np.ones_like(new_logits)
    logits, gates = [], []
    for old_z, old_g in zip(oof.logits, oof.gates, strict=True):
        z = np.empty((len(rows), len(oof.classes)), np.float32)
        g = np.empty_like(z)
        z[~new], g[~new] = old_z[rows[~new]], old_g[rows[~new]]
        z[new], g[new] = new_logits, new_gates
        logits.append(z)
        gates.append(g)
    return HeldOut(logits, gates)


def retrain(
    embeddings: np.ndarray,
    labels: list[str],
    sha256: list[str],
    classes: list[str],
    previous: Previous | None,
    unknown: np.ndarray | None = None,
    min_images: int = REUSE_MIN_IMAGES,
    growth: float = REUSE_GROWTH,
) -> TrainingResult:
    """`training.train`, or, when the previous version's evidence can be reused (`reuse_rows`), its extension.

    Without reuse the result is exactly `training.train`'s: the same set gives the same heads.
    """
    rows = None if previous is None else reuse_rows(previous, labels, sha256, classes, min_images, growth)
    if previous is None or rows is None:
        return train(embeddings, labels, classes, unknown)
    with threadpool_limits(BLAS_THREADS):
        held_out = extended_held_out(previous, rows, embeddings)
    folds, _ = cv_plan(list(previous.out_of_fold.labels))
    cv = {
        "scheme": "reused",
        "folds": int(previous.cv.get("folds", folds)),
        "repeats": len(held_out.logits),
        "cross_validated_images": previous.cross_validated_images(),
        "reused_images": int(np.sum(rows >= 0)),
        "scored_by_previous_version": int(np.sum(rows < 0)),
        "warm_start": True,
    }
    return conclude(embeddings, labels, classes, held_out, cv, unknown, start=previous.raw())
