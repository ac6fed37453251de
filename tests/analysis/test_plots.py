"""Plots of a version's out-of-fold scores, checked against the metrics the training stored for it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from workbench import plots
from workbench.analysis.review import average_precision
from workbench.analysis.training import NEGATIVE_LABEL, OutOfFold


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


@pytest.mark.parametrize(
    "draw", [plots.confusion_matrix, plots.score_histograms, plots.threshold_curves, plots.pr_curves]
)
def test_figures_render_as_png(oof, draw):
    scores, labels, classes, _ = oof
    buffer = io.BytesIO()
    draw(scores, labels, classes).savefig(buffer, format="png", dpi=60)
    image = Image.open(io.BytesIO(buffer.getvalue()))
    assert image.format == "PNG" and min(image.size) > 200


def test_pr_curves_show_each_class_average_precision_and_the_threshold_point(oof):
    scores, labels, classes, _ = oof
    ap = average_precision(OutOfFold(classes, scores, labels, [], []))
    figure = plots.pr_curves(scores, labels, classes, threshold=0.7)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [f"{name}: AP {ap[name]:.3f}" for name in classes]
    for i, (name, ax) in enumerate(zip(classes, panels, strict=True)):
        curve, point = ax.lines
        assert curve.get_xdata().min() == 0.0 and curve.get_xdata().max() == 1.0  # recall from 0 to every positive
        at = plots.threshold_table(scores[:, i], np.asarray(labels) == name, np.array([0.7]))
        assert (point.get_xdata()[0], point.get_ydata()[0]) == pytest.approx((at["recall"][0], at["precision"][0]))


def legend_overlaps(figure) -> list[str]:
    """Legends (of axes or of the figure) whose drawn box covers part of any visible axes."""
    FigureCanvasAgg(figure).draw()
    legends = [*figure.legends, *(ax.get_legend() for ax in figure.axes if ax.get_legend() is not None)]
    assert legends, "the figure has no legend"
    return [
        f"{legend.get_texts()[0].get_text()} over {ax.get_title()}"
        for legend in legends
        for ax in figure.axes
        if ax.get_visible() and legend.get_window_extent().overlaps(ax.get_window_extent())
    ]


@pytest.mark.parametrize("draw", [plots.score_histograms, plots.threshold_curves, plots.pr_curves])
def test_legends_of_class_panels_cover_no_plot(oof, draw):
    scores, labels, classes, _ = oof
    assert legend_overlaps(draw(scores, labels, classes)) == []


def test_version_comparison_shows_small_differences_as_labelled_error_bars():
    metrics = [
        {"accuracy": 0.994, "macro_f1": 0.99, "f1/husky": 0.99, "f1/beagle": 1.0},
        {"accuracy": 1.0, "macro_f1": 1.0, "f1/husky": 1.0, "f1/beagle": 1.0, "f1/dalmatian": 0.98},
    ]
    figure = plots.version_comparison([1, 2], metrics)
    overall, per_class = figure.axes
    heights = [round(bar.get_height(), 6) for bar in overall.patches]
    assert heights == [0.006, 0.0, 0.01, 0.0]  # 1 - accuracy for v1, v2, then 1 - macro F1
    assert [t.get_text() for t in overall.texts] == ["0.006", "0.000", "0.010", "0.000"]
    assert overall.get_ylim()[1] < 0.05  # the axis fits the errors: 0.006 is a visible bar, not a hairline
    low, high = per_class.get_ylim()
    assert 0.9 < low < 0.98 and 1.0 < high < 1.05  # F1 zoomed to the data
    assert legend_overlaps(figure) == []


def test_live_figure_redraws_only_the_threshold_lines_and_points(oof):
    scores, labels, classes, _ = oof
    live = plots.LiveFigure(plots.threshold_curves(scores, labels, classes, threshold=0.5))
    first = np.asarray(Image.open(io.BytesIO(live.image())).convert("L"), dtype=int)
    moved = np.asarray(Image.open(io.BytesIO(live.image(0.8))).convert("L"), dtype=int)
    assert {float(x) for line in live.lines for x in line.get_xdata()} == {0.8}
    columns = set(np.flatnonzero((np.abs(first - moved) > 40).any(axis=0)))  # JPEG: more than its own noise
    height = first.shape[0]
    line_columns = {
        round(ax.transData.transform((t, 0))[0]) + d
        for ax in live.figure.axes
        if ax.get_visible()
        for t in (0.5, 0.8)
        for d in range(-8, 9)
    }  # a JPEG block
    assert columns and columns <= line_columns  # nothing moved but the threshold lines
    assert (np.asarray(Image.open(io.BytesIO(live.image(0.5))).convert("L"), dtype=int) == first).all()  # and back
    assert all(
        "threshold" == t.get_text()
        for legend in live.figure.legends
        for t in legend.get_texts()
        if t.get_text().startswith("threshold")
    )  # the value is beside the slider, not in a static legend
    assert height == round(live.figure.get_figheight() * plots.LIVE_DPI)


def test_live_figure_moves_each_class_point(oof):
    scores, labels, classes, _ = oof
    live = plots.LiveFigure(plots.pr_curves(scores, labels, classes, threshold=0.5))
    assert set(live.marks) == set(classes)
    live.image(0.9, {classes[0]: (0.25, 0.75)})
    assert [list(d) for d in live.marks[classes[0]].get_data()] == [[0.25], [0.75]]


def test_version_comparison_leaves_every_class_line_visible_when_classes_share_values():
    metrics = [
        {"accuracy": 1.0, "macro_f1": 1.0, "f1/beagle": 1.0, "f1/husky": 1.0, "f1/pug": 0.99},
        {"accuracy": 1.0, "macro_f1": 1.0, "f1/beagle": 1.0, "f1/husky": 1.0, "f1/pug": 1.0},
    ]
    _, per_class = plots.version_comparison([1, 2], metrics).axes
    beagle, husky, _ = per_class.lines
    assert list(beagle.get_ydata()) == list(husky.get_ydata())  # one on top of the other...
    assert husky.get_zorder() > beagle.get_zorder() and husky.get_linewidth() < beagle.get_linewidth()
    assert (
        husky.get_markersize() < beagle.get_markersize() and husky.get_marker() != beagle.get_marker()
    )  # ...both seen
