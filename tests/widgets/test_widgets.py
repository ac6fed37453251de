"""Notebook widgets on the real engine: create from uploads, live status, classify with a threshold slider, review."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import websocket

from conftest import CREATE_CLASSES, DOGS_JPG, TUTORIAL, Gate
from support.servers import free_port, stop_process_group, wait_until_up
from workbench import plots, widgets
from workbench.analysis.review import review_items, threshold_metrics
from workbench.core.limits import Limits
from workbench.widgets.examples import _size_text

CAT_JPG = TUTORIAL / "cats" / "10373218496_4fc37d8e69_z.jpg"
ROOT = Path(__file__).resolve().parents[2]


def uploaded(*paths: Path, kind: str = "application/zip") -> tuple[dict, ...]:
    """What a FileUpload holds once a person picks files (ipywidgets 8: name, type, size, content, last_modified)."""
    stamp = datetime.now(UTC)
    return tuple(
        {
            "name": p.name,
            "type": kind,
            "size": p.stat().st_size,
            "content": memoryview(p.read_bytes()),
            "last_modified": stamp,
        }
        for p in paths
    )


def test_examples_widget_creates_from_uploads_and_its_status_follows_training(make_workbench, tutorial_zips):
    wb = make_workbench()
    gate = Gate("started")  # the training waits until the status widget exists, however fast it would be
    wb.subscribe(gate)
    form = widgets.ExamplesWidget(wb)
    assert form.target.label == "new classifier" and form.target.index == 0  # not a blank dropdown
    assert form.submit_button.description == "Create" and not form.name.disabled
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


def test_examples_widget_after_create_updates_what_it_created(make_workbench, tutorial_zips):
    wb = make_workbench()
    form = widgets.ExamplesWidget(wb)
    form.name.value = "dogs"
    form.upload.value = uploaded(tutorial_zips["husky"], tutorial_zips["cats"])
    form.negatives.value = "cats"
    form.submit_button.click()  # the button a person clicks, not the method behind it
    [created] = wb.list_classifiers()["classifiers"]
    cid = created["classifier_id"]
    assert (
        created["name"] == "dogs" and form.target.value == cid and form.target.label == f"dogs · {cid}"
    )  # the new one is in the dropdown, chosen
    assert form.submit_button.description == "Update" and form.name.disabled
    assert "created" in form.message.value
    wb.wait(cid, timeout=300)
    form.upload.value = uploaded(tutorial_zips["beagle"])
    form.negatives.value = widgets.NO_NEGATIVES
    form.submit_button.click()  # the second click: an update of the same classifier, not a second `dogs`
    assert f"updated {cid}" in form.message.value
    assert [c["classifier_id"] for c in wb.list_classifiers()["classifiers"]] == [cid]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    assert sorted(c["class"] for c in wb.get_classifier(cid)["classes"]) == ["beagle", "husky"]


def test_examples_widget_opened_on_a_classifier_updates_it(dogs):
    wb, cid = dogs
    form = widgets.ExamplesWidget(wb, cid)
    assert form.target.value == cid and form.submit_button.description == "Update" and form.name.disabled
    form.target.value = widgets.NEW_CLASSIFIER
    assert form.submit_button.description == "Create" and not form.name.disabled
    form.close()
    form.status.close()


def test_examples_widget_reports_bad_input_without_creating_anything(make_workbench, tutorial_zips):
    wb = make_workbench()
    form = widgets.ExamplesWidget(wb)
    form.name.value = "lonely"
    form.upload.value = uploaded(tutorial_zips["beagle"])
    form.submit_button.click()
    assert "InvalidExamples" in form.message.value and form.status is None
    assert wb.list_classifiers()["classifiers"] == []


def padded_zip(images: Path, target: Path, size: int, count: int = 12) -> Path:
    """A zip of `count` real images of a folder, each followed by zero bytes (decoders stop at the image's end
    marker), stored uncompressed so the zip is `size` bytes give or take its headers."""
    chosen = sorted(p for p in images.iterdir() if p.suffix.lower() == ".jpg")[:count]
    padding = (size - sum(p.stat().st_size for p in chosen)) // count
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in chosen:
            archive.writestr(path.name, path.read_bytes() + bytes(padding))
    return target


def test_examples_widget_creates_from_a_100_mb_upload(make_workbench, tutorial_zips, tmp_path):
    big = padded_zip(TUTORIAL / "beagle", tmp_path / "beagle.zip", 100 * 1000 * 1000)
    assert 99e6 < big.stat().st_size <= Limits().max_zip_bytes  # Watson's 100 MB a zip, nearly all of it
    wb = make_workbench()
    form = widgets.ExamplesWidget(wb)
    form.name.value = "big"
    form.upload.value = uploaded(big, tutorial_zips["cats"])  # the browser's one message, as the kernel gets it
    form.negatives.value = "cats"
    assert form.message.value == "example sets: beagle, cats"
    form.submit_button.click()
    [created] = wb.list_classifiers()["classifiers"]
    assert wb.wait(created["classifier_id"], timeout=600)["status"] == "ready"
    assert form.status.status == "ready" and [
        c["class"] for c in wb.get_classifier(created["classifier_id"])["classes"]
    ] == ["beagle"]
    assert len(wb.examples(created["classifier_id"])) == 12 + len(zipfile.ZipFile(tutorial_zips["cats"]).namelist())


def test_examples_widget_takes_sets_by_path_on_the_kernels_disk(make_workbench, tutorial_zips):
    wb = make_workbench()
    form = widgets.ExamplesWidget(wb)
    form.name.value = "from disk"
    form.folder.value = str(tutorial_zips["beagle"].parent)  # the six tutorial zips
    assert form.picked.value == ("beagle", "cats", "dalmatian", "goldenretriever", "husky", "more-cats")
    assert form.picked.layout.display is None and "beagle · " in form.picked.options[0][0]  # shown, with sizes
    form.picked.value = ("husky", "cats", "dalmatian")  # a person unpicks the rest
    assert form.negatives.options == (widgets.NO_NEGATIVES, "cats", "dalmatian", "husky")
    form.negatives.value = "cats"
    form.submit_button.click()
    [created] = wb.list_classifiers()["classifiers"]
    assert wb.wait(created["classifier_id"], timeout=300)["status"] == "ready"
    assert sorted(c["class"] for c in wb.get_classifier(created["classifier_id"])["classes"]) == ["dalmatian", "husky"]


def test_examples_widget_path_box_takes_one_zip_and_says_what_is_wrong_with_a_path(
    make_workbench, tutorial_zips, tmp_path
):
    form = widgets.ExamplesWidget(make_workbench())
    form.folder.value = str(tutorial_zips["husky"])
    assert form.picked.options == ((f"husky · {_size_text(tutorial_zips['husky'])}", "husky"),)
    assert form.message.value == "example sets: husky"
    form.folder.value = str(tmp_path / "nowhere")
    assert "does not exist on the kernel&#x27;s disk" in form.message.value and form.picked.options == ()
    assert form.picked.layout.display == "none"
    form.folder.value = str(DOGS_JPG)
    assert "is not a folder or a .zip file" in form.message.value


def test_examples_widget_says_why_an_upload_cannot_be_taken(make_workbench, tutorial_zips, tmp_path):
    wb = make_workbench()
    form = widgets.ExamplesWidget(wb)
    form.name.value = "refused"
    form.upload.value = uploaded(tutorial_zips["husky"], DOGS_JPG)  # the picker filters on .zip; a drop does not
    assert "InvalidExamples" in form.message.value and "&#x27;dogs.jpg&#x27; is not a .zip" in form.message.value
    assert "path box" in form.message.value
    huge = padded_zip(TUTORIAL / "beagle", tmp_path / "huge.zip", 101 * 1024 * 1024)  # over Watson's 100 MB a zip
    form.upload.value = uploaded(huge, tutorial_zips["cats"])
    assert (
        "LimitExceeded" in form.message.value and "101.0 MiB" in form.message.value and "100 MiB" in form.message.value
    )
    form.submit_button.click()
    assert "LimitExceeded" in form.message.value and wb.list_classifiers()["classifiers"] == []


def test_examples_widget_says_how_much_an_upload_may_carry(make_workbench, monkeypatch):
    wb = make_workbench()
    monkeypatch.delenv(widgets.LAB_UPLOAD_ENV, raising=False)
    plain = widgets.ExamplesWidget(wb).upload_note.value  # a Jupyter server started without our config
    assert "up to 10 MiB in all" in plain and "Connection lost" in plain and "make lab" in plain and "path" in plain
    config = lab_config()
    monkeypatch.setenv(widgets.LAB_UPLOAD_ENV, config["env"])
    assert "up to 256 MiB in all" in widgets.ExamplesWidget(wb).upload_note.value
    assert config["tornado"]["websocket_max_message_size"] > 256 * 1024 * 1024 == int(config["env"])


def lab_config() -> dict:
    """What jupyter_server_config.py sets, read as Jupyter reads it (a Config object named `c`)."""
    from traitlets.config import Config

    config = Config()
    before = os.environ.get(widgets.LAB_UPLOAD_ENV)
    try:
        exec((ROOT / "jupyter_server_config.py").read_text(), {"get_config": lambda: config, "__name__": "config"})
        env = os.environ[widgets.LAB_UPLOAD_ENV]
    finally:
        if before is None:
            os.environ.pop(widgets.LAB_UPLOAD_ENV, None)
        else:
            os.environ[widgets.LAB_UPLOAD_ENV] = before
    return {"tornado": config.ServerApp.tornado_settings, "env": env}


@pytest.mark.slow
def test_lab_config_lets_a_20_mb_message_reach_the_kernel(tmp_path):
    """A real Jupyter server started with the project's config (as `make lab` does) takes a 20 MB websocket
    message (tornado's default drops anything over 10 MiB), and its kernels know the limit."""
    port, token = free_port(), "t0ken"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "server",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={tmp_path}",
        f"--IdentityProvider.token={token}",
        f"--config={ROOT / 'jupyter_server_config.py'}",
    ]
    if os.getuid() == 0:
        command.append("--allow-root")
    log = tmp_path / "server.log"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    env.pop(widgets.LAB_UPLOAD_ENV, None)
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/api/status?token={token}", server, log, "jupyter server")
        request = urllib.request.Request(
            f"{base}/api/kernels?token={token}", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            kernel = json.load(answer)["id"]
        payload = "x" * (20 * 1000 * 1000)
        code = f"import os; print(len({payload!r}), os.environ.get({widgets.LAB_UPLOAD_ENV!r}))"
        printed = execute(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?token={token}", code)
    finally:
        stop_process_group(server)
    assert printed.split() == [str(len(payload)), str(256 * 1024 * 1024)]


def execute(url: str, code: str, timeout_s: float = 120) -> str:
    """Runs `code` on a kernel through its websocket (Jupyter's JSON protocol); returns what it printed."""
    connection = websocket.create_connection(url, timeout=timeout_s)
    try:
        msg_id = uuid.uuid4().hex
        connection.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": uuid.uuid4().hex,
                        "date": datetime.now(UTC).isoformat(),
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                    },
                }
            )
        )
        printed = []
        while True:
            message = json.loads(connection.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream":
                printed.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError(message["content"]["evalue"])
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(printed)
    finally:
        connection.close()


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
    mine = dict(
        zip(
            mine.loc[mine["classifier_id"] == cid, "class"],
            mine.loc[mine["classifier_id"] == cid, "score"],
            strict=True,
        )
    )
    assert mine == expected and mine["goldenretriever"] >= 0.5
    assert widget.image.value[:2] == b"\xff\xd8"  # the image is shown (as JPEG)


def test_classify_widget_upload_shows_and_scores_the_uploaded_image(dogs):
    wb, cid = dogs
    widget = widgets.ClassifyWidget(wb, [cid, "default"])
    widget.upload.value = uploaded(DOGS_JPG, kind="image/jpeg")  # what the browser sends; the observer classifies
    dogs_image, dogs_table = widget.image.value, widget.table.value
    assert widget.message.value == "" and set(widget.scores["image"]) == {"dogs.jpg"}
    assert dogs_image == widgets.thumbnail(DOGS_JPG.read_bytes(), widgets.IMAGE_WIDTH_PX * 2)
    assert "goldenretriever" in dogs_table
    widget.upload.value = uploaded(CAT_JPG, kind="image/jpeg")  # a second pick replaces the first
    assert widget.image.value == widgets.thumbnail(CAT_JPG.read_bytes(), widgets.IMAGE_WIDTH_PX * 2) != dogs_image
    assert set(widget.scores["image"]) == {CAT_JPG.name} and widget.table.value != dogs_table
    engine = wb.classify(CAT_JPG, classifier_ids=[cid, "default"], threshold=0.0)
    expected = {
        (r["classifier_id"], c["class"]): c["score"] for r in engine["images"][0]["classifiers"] for c in r["classes"]
    }
    assert (
        dict(
            zip(
                zip(widget.scores["classifier_id"], widget.scores["class"], strict=True),
                widget.scores["score"],
                strict=True,
            )
        )
        == expected
    )
    mine = widget.results()
    assert "goldenretriever" not in set(mine.loc[mine["classifier_id"] == cid, "class"])  # a cat is no retriever


def test_classify_widget_upload_of_a_non_image_says_so_and_keeps_the_last_image(dogs, tmp_path):
    wb, cid = dogs
    widget = widgets.ClassifyWidget(wb, [cid])
    widget.upload.value = uploaded(DOGS_JPG, kind="image/jpeg")
    shown = widget.image.value
    notes = tmp_path / "notes.jpg"
    notes.write_bytes(b"not a picture at all")
    widget.upload.value = uploaded(notes, kind="image/jpeg")  # a browser filters on the extension only
    assert "notes.jpg" in widget.message.value and widget.image.value == shown
    assert len(widget.results()) == 0 and "0 classes" in widget.table.value


def test_classify_widget_classifier_choice_reclassifies_the_upload(dogs):
    wb, cid = dogs
    widget = widgets.ClassifyWidget(wb, [cid])
    widget.upload.value = uploaded(DOGS_JPG, kind="image/jpeg")
    assert set(widget.scores["classifier_id"]) == {cid}
    widget.classifiers.value = ("default",)
    assert set(widget.scores["classifier_id"]) == {"default"} and set(widget.scores["image"]) == {"dogs.jpg"}
    assert cid not in widget.table.value


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
    cid = wb.create_classifier("tiny", {"husky": tutorial_zips["husky"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    status = widgets.StatusWidget(wb, cid)
    status.wait(timeout=300)
    wb.delete_classifier(cid)
    assert status.statuses[-2:] == ["ready", "deleted"]
    assert status.progress.layout.display == "none" and "deleted" in status.label.value  # no empty "embedding" bar
    status.close()
    assert status.on_event not in wb.jobs.listeners


def test_overlay_gallery_says_when_no_image_is_misclassified(make_workbench, tutorial_zips, dogs):
    wb = make_workbench()  # huskies against cats: an easy task
    cid = wb.create_classifier("tiny", {"husky": tutorial_zips["husky"]}, negative_examples=tutorial_zips["cats"])[
        "classifier_id"
    ]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    oof = wb.out_of_fold(cid)
    clean = [t for t in np.linspace(0.05, 0.95, 19) if not (review_items(oof, t)["kind"] == "misclassified").any()]
    assert clean, "some threshold leaves no training image misclassified"
    gallery = widgets.OverlayGallery(wb, cid, threshold=clean[0])
    assert len(gallery.items) == 0 and gallery.children == (gallery.note,)  # no empty grid under a caption
    assert f"no training image is misclassified at threshold {clean[0]:.2f}" in gallery.note.value
    wb, cid = dogs
    shown = widgets.OverlayGallery(wb, cid, threshold=0.95, max_images=2)  # dalmatians and friends below 0.95
    assert len(shown.items) == 2 and len(shown.children[1].children) == 2 and "2 misclassified" in shown.note.value


def test_gallery_shows_one_tile_per_flagged_image(dogs):
    wb, cid = dogs
    gallery = widgets.Gallery(wb, cid, threshold=0.9, margin=0.3, max_images=5)
    shown = gallery.items[gallery.items["kind"] == gallery.kind.value]
    assert len(gallery.grid.children) == min(5, len(shown)) and gallery.note.value == ""
    gallery.kind.value = "borderline"
    assert len(gallery.grid.children) == min(5, int((gallery.items["kind"] == "borderline").sum()))


def test_gallery_captions_name_the_top_class_under_the_threshold_and_the_whole_file_name(dogs):
    wb, cid = dogs
    gallery = widgets.Gallery(wb, cid, threshold=0.9, margin=0.3, max_images=200)
    shown = gallery.items[gallery.items["kind"] == "misclassified"].reset_index(drop=True)
    below = [i for i, row in shown.iterrows() if row["predicted"] == plots.NO_CLASS_NAME]
    assert below, "at 0.9 some tutorial images reach no class"
    for i in below:
        row, caption = shown.loc[i], gallery.grid.children[i].children[1].value
        assert f"top: {row['top_class']} {row['top_score']:.2f} (below 0.9)" in caption
        assert plots.NO_CLASS_NAME not in caption
        assert f"title='{Path(row['source']).name}'" in caption and "text-overflow:ellipsis" in caption


def test_gallery_says_when_a_view_is_empty(dogs):
    wb, cid = dogs
    gallery = widgets.Gallery(wb, cid, threshold=0.5, margin=0.0)
    gallery.kind.value = "borderline"  # nothing scores exactly at the threshold
    assert gallery.grid.children == () and "no borderline images" in gallery.note.value


def threshold_lines(live: plots.LiveFigure) -> set[float]:
    return {float(x) for line in live.lines for x in line.get_xdata()}


def test_threshold_plots_redraw_when_the_slider_moves(dogs):
    wb, cid = dogs
    plots_widget = widgets.ThresholdPlots(wb.out_of_fold(cid))
    before = plots_widget.histograms.value, plots_widget.curves.value, plots_widget.pr_curves.value
    plots_widget.threshold.value = 0.8
    assert plots_widget.wait(timeout=60)
    after = plots_widget.histograms.value, plots_widget.curves.value, plots_widget.pr_curves.value
    assert all(a[:3] == b"\xff\xd8\xff" for a in after) and plots_widget.histograms.format == "jpeg"  # JPEG
    assert after[0] != before[0] and after[1] != before[1]  # the threshold lines moved (the points may stay put)
    assert all(threshold_lines(plots_widget.figures[name]) == {0.8} for name in ("histograms", "curves"))
    assert plots_widget.drawn_threshold == 0.8 and "At threshold 0.80" in plots_widget.numbers.value
    ece = wb.versions(cid)[-1]["metrics"]["calibration"]["ece"]
    assert f"ECE {ece:.3f}" in plots_widget.calibration.value  # the version's own held-out calibration
    assert plots_widget.reliability.value[:4] == b"\x89PNG" and plots_widget.reliability in plots_widget.children


def test_threshold_plots_follow_a_dragged_slider_with_few_redraws_ending_on_its_last_value(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    plots_widget = widgets.ThresholdPlots(oof, interval_s=0.2)
    drawn = plots_widget.redraws
    started = time.monotonic()
    for value in np.arange(0.30, 0.70, 0.01):  # a drag: 40 values in a few milliseconds
        plots_widget.threshold.value = round(float(value), 2)
    dragged_s = time.monotonic() - started
    assert plots_widget.wait(timeout=60)
    redraws = plots_widget.redraws - drawn
    assert 1 <= redraws <= 2 + dragged_s / 0.2 and redraws < 40  # the first value at once, then one per interval
    assert plots_widget.drawn_threshold == 0.69
    expected = threshold_metrics(oof, 0.69)
    assert plots_widget.metrics.equals(expected) and "At threshold 0.69" in plots_widget.numbers.value
    table = plots_widget.numbers.value
    for name, row in expected.iterrows():  # precision, recall and false-positive rate per class, as shown
        assert name in table and f"{row['recall']:.3f}" in table and f"{row['false_positive_rate']:.3f}" in table
    assert threshold_lines(plots_widget.figures["histograms"]) == {0.69}
    marks = plots_widget.figures["pr_curves"].marks
    for name, row in expected.iterrows():  # each class's precision-recall point sits at the threshold's numbers
        x, y = marks[str(name)].get_data()
        assert (x[0], y[0]) == pytest.approx((row["recall"], row["precision"]), nan_ok=True)


def test_threshold_plots_confusion_matrix_and_most_confused_follow_the_slider(dogs):
    wb, cid = dogs
    oof = wb.out_of_fold(cid)
    found = wb.interpretation(cid)
    plots_widget = widgets.ThresholdPlots(oof)
    for value in (0.5, 0.99, 0.02):
        plots_widget.threshold.value = value
        assert plots_widget.wait(timeout=60) and plots_widget.drawn_threshold == value
        matrix = plots_widget.confusion_matrix
        assert matrix.equals(found.confusion_matrix(value)) and matrix.to_numpy().sum() == len(oof.labels)
        assert plots_widget.most_confused == found.most_confused(1, value)
        assert f"Confusion matrix at threshold {value:.2f}" in plots_widget.confusion.value
        for actual, predicted, count in plots_widget.most_confused[:8]:
            assert f"{actual} taken for {predicted}: {count}" in plots_widget.confused.value
        worst = found.top_losses(1, value).iloc[0]
        assert Path(worst["name"]).name in plots_widget.losses.value
    strict, loose = found.confusion_matrix(0.99), found.confusion_matrix(0.02)
    assert strict.iloc[:-1, -1].sum() > loose.iloc[:-1, -1].sum()  # a strict threshold leaves more images with no class
    assert plots_widget.confusion.value.count("<tr>") == len(oof.classes) + 2  # header, every class, (none)


def test_debounced_runs_the_first_trigger_at_once_and_folds_the_rest_into_one_more_run():
    runs: list[float] = []
    debounced = widgets.Debounced(lambda: runs.append(time.monotonic()), interval_s=0.3)
    started = time.monotonic()
    debounced.trigger()
    assert debounced.wait(5) and len(runs) == 1 and runs[0] - started < 0.25  # no wait for the interval
    for _ in range(20):
        debounced.trigger()
    assert debounced.wait(5) and len(runs) == 2 and runs[1] - runs[0] >= 0.29  # one more, an interval after the first


def test_results_grid_classifies_a_folder_in_batches_like_the_engine(dogs):
    wb, cid = dogs
    counting = CountingWorkbench(wb)
    grid = widgets.ResultsGrid(counting, TUTORIAL / "test", [cid], threshold=0.5, batch_size=4)
    assert [p.name for p in grid.paths] == [f"{i}.jpg" for i in range(7)]  # LABELS.txt left out
    assert counting.calls == [4, 3] and len(grid.grid.children) == 7
    engine = wb.classify(grid.paths, classifier_ids=[cid], threshold=0.0)
    for path, image in zip(grid.paths, engine["images"], strict=True):
        scores = {c["class"]: c["score"] for c in image["classifiers"][0]["classes"]}
        mine = grid.top_classes(path)
        # the three best scores, each the engine's score of its class (classes tied at a score may come in any order)
        assert list(mine["score"]) == pytest.approx(sorted(scores.values(), reverse=True)[:3], abs=1e-6)
        assert [scores[name] for name in mine["class"]] == pytest.approx(list(mine["score"]), abs=1e-6)
    captions = [c.value for c in grid.captions]
    best = [grid.top_classes(p).iloc[0] for p in grid.paths]
    for caption, top in zip(captions, best, strict=True):
        assert f"{top['class']} {top['score']:.2f}" in caption
        assert ("(below 0.5)" in caption) == (top["score"] < 0.5)
    predicted = grid.predictions()
    assert list(predicted["image"]) == [str(p) for p in grid.paths]
    assert list(predicted["class"]) == [t["class"] for t in best] and list(predicted["reached"]) == [
        t["score"] >= 0.5 for t in best
    ]
    grid.threshold.value = 0.999  # re-captions without classifying again
    for caption, top in zip(grid.captions, best, strict=True):
        assert ("(below 0.999)" in caption.value) == (top["score"] < 0.999)
    assert counting.calls == [4, 3]


def test_results_grid_marks_each_labelled_image_right_or_wrong(dogs):
    wb, cid = dogs
    grid = widgets.ResultsGrid(wb, TUTORIAL / "test", [cid], threshold=0.5)  # test/LABELS.txt
    assert grid.labelled
    predicted = grid.predictions()
    labels = {
        "0.jpg": "husky",
        "1.jpg": "(none)",
        "2.jpg": "dalmatian",
        "3.jpg": "(none)",
        "4.jpg": "beagle",
        "5.jpg": "goldenretriever",
        "6.jpg": "husky",
    }  # cheetah and tiger are none of the classes
    assert [labels[Path(p).name] for p in predicted["image"]] == list(predicted["truth"])
    assert predicted["correct"].all() and "7 of 7 right" in grid.summary.value
    assert all("right" in c.value for c in grid.captions)
    matrix = grid.interpretation().confusion_matrix(0.5)
    assert (
        np.trace(matrix.to_numpy()) == 7 and matrix.loc["husky", "husky"] == 2 and matrix.loc["(none)", "(none)"] == 2
    )
    grid.threshold.value = 1.0  # scores round to 6 decimals: only those at 1.0 still reach it
    moved = grid.predictions()
    expected = [
        (cls == truth) if reached else truth == "(none)"
        for cls, reached, truth in zip(moved["class"], moved["reached"], moved["truth"], strict=True)
    ]
    assert list(moved["correct"]) == expected and f"{sum(expected)} of 7 right" in grid.summary.value
    assert sum("true: " in c.value for c in grid.captions) == 7 - sum(expected)
    wrong = widgets.ResultsGrid(wb, TUTORIAL / "test", [cid], labels={"0.jpg": "beagle", "1.jpg": "husky"})
    # 0 and 1 mislabelled; the images the mapping leaves out are none of the classes: only 3.jpg (a tiger) is right
    assert list(wrong.predictions()["correct"]) == [False, False, False, True, False, False, False]
    assert "true: beagle" in wrong.captions[0].value and "true: husky" in wrong.captions[1].value


def test_results_grid_takes_labels_from_class_sub_folders_and_says_what_is_wrong(dogs, tmp_path):
    wb, cid = dogs
    for folder, source in (("husky", "husky"), ("beagle", "husky"), ("negatives", "cats")):
        (tmp_path / "set" / folder).mkdir(parents=True)
        for image in sorted((TUTORIAL / source).iterdir())[:2]:
            (tmp_path / "set" / folder / image.name).write_bytes(image.read_bytes())
    grid = widgets.ResultsGrid(wb, tmp_path / "set", [cid])
    predicted = grid.predictions()
    assert len(predicted) == 6 and list(predicted["truth"]) == ["beagle"] * 2 + ["husky"] * 2 + ["(none)"] * 2
    assert list(predicted["correct"]) == [False, False, True, True, True, True]  # husky photos filed under beagle
    assert sum("true: beagle" in c.value for c in grid.captions) == 2
    assert grid.interpretation().most_confused() == [("beagle", "husky", 2)]
    unlabelled = widgets.ResultsGrid(wb, tmp_path / "set", [cid], labels=False)
    assert not unlabelled.labelled and "truth" not in unlabelled.predictions()


def test_results_grid_takes_a_list_of_paths_and_several_classifiers(dogs):
    wb, cid = dogs
    grid = widgets.ResultsGrid(wb, [DOGS_JPG, TUTORIAL / "test" / "2.jpg"], [cid, "default"])
    assert set(grid.scores["classifier_id"]) == {cid, "default"}
    assert f"{cid}: " in grid.captions[0].value and "default: " in grid.captions[0].value
    assert grid.top_classes(DOGS_JPG).groupby("classifier_id").size().max() == widgets.TOP_CLASSES


class CountingWorkbench:
    """The real Workbench, recording how many images each classify call carried."""

    def __init__(self, wb) -> None:
        self.wb, self.calls = wb, []

    def __getattr__(self, name):
        return getattr(self.wb, name)

    def classify(self, images, **kwargs):
        self.calls.append(len(images))
        return self.wb.classify(images, **kwargs)


def test_compare_versions_without_tracking_plots_both_versions(dogs):
    wb, cid = dogs
    frame = wb.compare_versions(cid)
    assert frame["version"].tolist() == [1, 2]
    assert frame.loc[1, "classes"] == len(CREATE_CLASSES) + 1 and np.isnan(frame.loc[0, "f1/dalmatian"])
    figure = plots.version_comparison(frame["version"].tolist(), frame.to_dict("records"))
    overall, per_class = figure.axes
    assert [t.get_text() for t in overall.get_xticklabels()] == ["v1", "v2"]
    assert [line.get_label() for line in per_class.lines] == [*CREATE_CLASSES, "dalmatian"]
