"""What a run records of how its held-out evidence was made (`cv_params`), on real trainings of real embeddings."""

from __future__ import annotations

import numpy as np

from workbench.analysis.retraining import Previous, retrain
from workbench.analysis.training import NEGATIVE_LABEL, train
from workbench.tracking.run_record import cv_params


def test_params_say_whether_a_version_cross_validated_or_reused_its_parents_evidence(dogs) -> None:
    wb, cid = dogs
    rows = wb.store.examples(cid)
    vectors = wb.engine.open().cache.get_many([r.sha256 for r in rows], wb.backbone.backbone_id)
    x = np.stack([vectors[r.sha256] for r in rows])
    labels = [r.class_name or NEGATIVE_LABEL for r in rows]
    shas = [r.sha256 for r in rows]
    classes = list(dict.fromkeys(r.class_name for r in rows if r.class_name))
    first = train(x[:-5], labels[:-5], classes)  # the last 5 rows come in the retrain
    held_out = first.out_of_fold(shas[:-5], shas[:-5])
    calibration = first.metrics["calibration"]
    previous = Previous(
        first.heads, (calibration["platt_slope"], calibration["platt_intercept"]), held_out, first.metrics["cv"]
    )
    second = retrain(x, labels, shas, classes, previous, min_images=0)
    assert cv_params(first.metrics) == {
        "cv_scheme": "kfold",
        "cv_folds": 5,
        "cv_repeats": 1,
        "cv_cross_validated_images": len(labels) - 5,
        "cv_reused_images": 0,
        "cv_scored_by_previous_version": 0,
        "warm_start": False,
    }
    assert cv_params(second.metrics) == {
        "cv_scheme": "reused",
        "cv_folds": 5,
        "cv_repeats": 1,
        "cv_cross_validated_images": len(labels) - 5,
        "cv_reused_images": len(labels) - 5,
        "cv_scored_by_previous_version": 5,
        "warm_start": True,
    }
    assert cv_params({"images": 40.0, "calibration": {"cv_repeats": 3}})["cv_cross_validated_images"] == 40
