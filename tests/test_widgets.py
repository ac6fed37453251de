"""Notebook widgets on the real engine: create from uploads with a live status, classify with a threshold slider, review."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import CREATE_CLASSES, DOGS_JPG, Gate
from workbench import plots, widgets


def uploaded(*paths: Path) -> tuple[dict, ...]:
    """What a FileUpload holds after a person picks these files."""
    stamp = datetime.now(timezone.utc)
    return tuple(
        {"name": p.name, "type": "application/zip", "size": p.stat().st_size, "content": memoryview(p.read_bytes()),
         "last_modified": stamp}
        for p in paths
    )


def test_examples_widget_creates_from_uploads_and_its_status_follows_training(make_workbench, tutorial_zips):
    wb = make_workbench()
    gate = Gate("started")  # the training waits until the status widget exists, however fast it would be
    wb.subscribe(gate)
    form = widgets.ExamplesWidget(wb)
    form.name.value = "pets"
    form.upload.value = uploaded(tutorial_zips["beagle"], tutorial_zips["cats"])
    assert form.negatives.options == (widgets.NO_NEGATIVES, "beagle", "cats")
    form.negatives.value = "cats"
    record = form.submit()
    assert record["status"] == "training" and [c["class"] for c in record["classes"]] == ["beagle"]
    gate.opened.set()
    wb.wait(record["classifier_id"], timeout=300)  # the engine's wait: the widget is driven by events alone
    status = form.status
    assert status.statuses == ["training", "ready"] and status.status == "ready"
    assert {"fitting", "ready"} <= set(status.stages)  # "started" may come before the widget subscribes
    assert "ready" in status.label.value and status.progress.value == status.progress.max


def test_examples_widget_reports_bad_input_without_creating_anything(make_workbench, tutorial_zips):
    wb = make_workbench()
    form = widgets.ExamplesWidget(wb)
    form.name.value = "lonely"
    form.upload.value = uploaded(tutorial_zips["beagle"])
    assert form.submit() is None
    assert "InvalidExamples" in form.message.value
    assert wb.list_classifiers()["classifiers"] == []


@pytest.fixture(scope="module")
def classified(dogs):
    wb, cid = dogs
    widget = widgets.ClassifyWidget(wb, [cid, "default"])
    widget.classify(DOGS_JPG)
    return wb, cid, widget


def test_classify_widget_scores_dogs_jpg_like_the_engine(classified):
    wb, cid, widget = classified
    answer = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.5)
    expected = {c["class"]: c["score"] for c in answer["images"][0]["classifiers"][0]["classes"]}
    mine = widget.results()
    mine = dict(zip(mine.loc[mine["classifier_id"] == cid, "class"], mine.loc[mine["classifier_id"] == cid, "score"]))
    assert mine == expected and mine["goldenretriever"] >= 0.5
    assert widget.image.value[:2] == b"\xff\xd8"  # the image is shown (as JPEG)


def test_classify_widget_threshold_slider_refilters_the_table(classified):
    _, _, widget = classified
    try:
        widget.threshold.value = 0.2
        low, low_html = len(widget.results()), widget.table.value
        widget.threshold.value = 0.9
        high, high_html = len(widget.results()), widget.table.value
    finally:
        widget.threshold.value = 0.5
    assert low > high and low_html != high_html
    assert (widget.scores["score"] >= 0.9).sum() == high


def test_status_widget_sees_delete(make_workbench, tutorial_zips):
    wb = make_workbench()
    cid = wb.create_classifier("tiny", {"husky": tutorial_zips["husky"]}, negative_examples=tutorial_zips["cats"])["classifier_id"]
    status = widgets.StatusWidget(wb, cid)
    status.wait(timeout=300)
    wb.delete_classifier(cid)
    assert status.statuses[-2:] == ["ready", "deleted"]
    status.close()
    assert status.on_event not in wb.jobs.listeners


def test_gallery_shows_one_tile_per_flagged_image(dogs):
    wb, cid = dogs
    gallery = widgets.Gallery(wb, cid, threshold=0.9, margin=0.3, max_images=5)
    shown = gallery.items[gallery.items["kind"] == gallery.kind.value]
    assert len(gallery.grid.children) == min(5, len(shown))
    gallery.kind.value = "borderline"
    assert len(gallery.grid.children) == min(5, int((gallery.items["kind"] == "borderline").sum()))


def test_threshold_plots_redraw_when_the_slider_moves(dogs):
    wb, cid = dogs
    plots_widget = widgets.ThresholdPlots(wb.out_of_fold(cid))
    before = plots_widget.histograms.value
    plots_widget.threshold.value = 0.8
    assert plots_widget.histograms.value != before and plots_widget.histograms.value[:4] == b"\x89PNG"


def test_compare_versions_without_tracking_plots_both_versions(dogs):
    wb, cid = dogs
    frame = wb.compare_versions(cid)
    assert frame["version"].tolist() == [1, 2]
    assert frame.loc[1, "classes"] == len(CREATE_CLASSES) + 1 and np.isnan(frame.loc[0, "f1/dalmatian"])
    figure = plots.version_comparison(frame["version"].tolist(), frame.to_dict("records"))
    overall, per_class = figure.axes
    assert [t.get_text() for t in overall.get_xticklabels()] == ["v1", "v2"]
    assert [line.get_label() for line in per_class.lines] == [*CREATE_CLASSES, "dalmatian"]
