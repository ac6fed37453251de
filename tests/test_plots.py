"""Plots of a version's out-of-fold scores, checked against the metrics the training stored for it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workbench import plots
from workbench.training import NEGATIVE_LABEL, OutOfFold


@pytest.fixture(scope="module")
def oof(dogs):
    """(scores, labels, classes, metrics) of the tutorial classifier's serving version."""
    wb, cid = dogs
    version = wb.store.versions(cid)[-1]
    held_out = OutOfFold.from_bytes(wb.store.out_of_fold_path(cid, version.version).read_bytes())
    assert held_out.classes == version.classes
    return held_out.scores, held_out.labels, version.classes, version.metrics


def test_threshold_table_at_half_matches_stored_precision_and_recall(oof):
    scores, labels, classes, metrics = oof
    for i, name in enumerate(classes):
        table = plots.threshold_table(scores[:, i], np.asarray(labels) == name, np.array([0.0, 0.5, 1.0]))
        assert table["precision"][1] == pytest.approx(metrics["per_class"][name]["precision"])
        assert table["recall"][1] == pytest.approx(metrics["per_class"][name]["recall"])
        assert table["recall"][0] == 1.0 and table["false_positive_rate"][0] == 1.0  # t=0 calls every image


def test_confusion_counts_cover_every_image_and_match_accuracy(oof):
    scores, labels, classes, metrics = oof
    counts, rows, columns = plots.confusion_counts(scores, labels, classes)
    assert counts.sum() == len(labels) == metrics["images"]
    assert rows == [*classes, plots.NEGATIVE_NAME] and columns == [*classes, plots.NO_CLASS_NAME]
    assert np.trace(counts) / counts.sum() == pytest.approx(metrics["accuracy"])
    assert counts[-1].sum() == labels.count(NEGATIVE_LABEL)


def test_score_histograms_show_every_image_per_class_with_the_threshold(oof):
    scores, labels, classes, _ = oof
    figure = plots.score_histograms(scores, labels, classes, threshold=0.5)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == classes
    for ax in panels:
        assert sum(patch.get_data().values.sum() for patch in ax.patches) == len(labels)
        assert any(list(line.get_xdata()) == [0.5, 0.5] for line in ax.lines)


def test_threshold_curves_draw_three_curves_per_class(oof):
    scores, labels, classes, _ = oof
    figure = plots.threshold_curves(scores, labels, classes)
    for ax in [ax for ax in figure.axes if ax.get_visible()]:
        names = [line.get_label() for line in ax.lines]
        assert names[:3] == ["precision", "recall", "false-positive rate"]


@pytest.mark.parametrize("draw", [plots.confusion_matrix, plots.score_histograms, plots.threshold_curves])
def test_figures_render_as_png(oof, draw):
    scores, labels, classes, _ = oof
    buffer = io.BytesIO()
    draw(scores, labels, classes).savefig(buffer, format="png", dpi=60)
    image = Image.open(io.BytesIO(buffer.getvalue()))
    assert image.format == "PNG" and min(image.size) > 200
