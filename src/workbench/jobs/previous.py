"""The version a retrain builds on: its heads, calibration and held-out evidence, read from the store.

`analysis.retraining` decides whether they can be reused; this module only finds them, and finds
nothing (a full training) when the newest version was embedded by another backbone or precision,
or its files are missing, unreadable or older than the held-out logits they need.
"""

from __future__ import annotations

import logging

from ..analysis.retraining import Previous
from ..analysis.training import Heads, OutOfFold
from ..store.database import Store
from ..store.promotion import newest_version

log = logging.getLogger(__name__)


def previous_training(store: Store, classifier_id: str, backbone_id: str, precision: str) -> Previous | None:
    """The newest version's reusable parts, or None when there is none or it cannot be reused."""
    with store.transaction(write=False) as db:
        number = newest_version(db, classifier_id)
        if number is None:
            return None
        record = store.version(classifier_id, number, db)
    metrics = record.metrics
    if metrics.get("backbone_id") != backbone_id or metrics.get("precision") != precision:
        return None  # its logits are of other embeddings
    calibration = metrics.get("calibration", {})
    if "platt_slope" not in calibration or "platt_intercept" not in calibration:
        return None
    try:
        heads = Heads.from_bytes(store.head_path(classifier_id, number).read_bytes())
        held_out = OutOfFold.from_bytes(store.out_of_fold_path(classifier_id, number).read_bytes(), number)
    except (OSError, ValueError, KeyError) as exc:  # the doctor reports broken files; a full training needs none
        log.warning("version %d of %s not reused (%s); cross-validating in full", number, classifier_id, exc)
        return None
    shape = (len(held_out.sha256), len(held_out.classes))
    if held_out.logits is None or held_out.gates is None or held_out.scores.shape != shape:
        return None  # written before the logits were kept, or inconsistent: cross-validate in full
    if held_out.logits.ndim != 3 or held_out.logits.shape[1:] != shape or held_out.gates.shape != held_out.logits.shape:
        return None
    slope_intercept = (float(calibration["platt_slope"]), float(calibration["platt_intercept"]))
    return Previous(heads, slope_intercept, held_out, dict(metrics.get("cv", {})))
