"""The version a retrain builds on, read back from a real store: heads, calibration, held-out logits and gates."""

from __future__ import annotations

import numpy as np

from workbench.analysis.calibration import sigmoid
from workbench.jobs.previous import previous_training


def test_the_newest_version_is_read_back_with_the_logits_its_scores_came_from(dogs) -> None:
    wb, cid = dogs
    backbone_id, precision = wb.backbone.backbone_id, wb.backbone.precision
    previous = previous_training(wb.store, cid, backbone_id, precision)
    assert previous is not None
    newest = wb.versions(cid)[-1]
    held_out = previous.out_of_fold
    assert held_out.version == newest["version"] and previous.cv == newest["metrics"]["cv"]
    assert held_out.logits is not None and held_out.gates is not None
    repeats = newest["metrics"]["calibration"]["cv_repeats"]
    assert held_out.logits.shape == held_out.gates.shape == (repeats, newest["metrics"]["images"], 4)
    slope, intercept = previous.calibration
    each = zip(held_out.logits, held_out.gates, strict=True)
    scores = np.mean([sigmoid(slope * z + intercept) * g for z, g in each], axis=0)
    np.testing.assert_allclose(scores, held_out.scores, atol=1e-5)  # the stored scores came from these logits
    weights, bias = previous.raw()
    np.testing.assert_allclose(slope * weights, previous.heads.weights, rtol=1e-5)
    np.testing.assert_allclose(slope * bias + intercept, previous.heads.bias, rtol=1e-5, atol=1e-5)


def test_a_version_embedded_by_another_backbone_or_precision_is_not_reused(dogs) -> None:
    wb, cid = dogs
    assert previous_training(wb.store, cid, "another-backbone", wb.backbone.precision) is None
    other = "int8" if wb.backbone.precision != "int8" else "fp32"
    assert previous_training(wb.store, cid, wb.backbone.backbone_id, other) is None
