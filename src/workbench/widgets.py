"""Notebook front: ipywidgets to create or update a classifier, watch it train, classify images, review training images.

Widgets hold no logic of their own: they call the `Workbench` and draw with `workbench.plots`.
Each also works undisplayed (headless papermill runs read the same values a person sees).
"""

from __future__ import annotations

import html
import io
import threading
from pathlib import Path
from typing import Sequence

import ipywidgets as widgets
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from . import plots
from .errors import WorkbenchError
from .examples import folder_sets, set_name
from .jobs import ClassifierEvent
from .review import BORDERLINE_MARGIN, review_items
from .service import Workbench
from .training import OutOfFold
from .vocabulary import GENERAL_CLASSIFIER_ID, THRESHOLD
NO_NEGATIVES = "(none)"
MAX_TABLE_ROWS = 30  # classify results shown at once; the rest are counted
THUMBNAIL_PX = 128
GALLERY_COLUMNS = 6
MAX_GALLERY_IMAGES = 24
IMAGE_WIDTH_PX = 320
SETTLED_STAGES = ("ready", "failed", "deleted")


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (for Image widgets; no pyplot involved)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def thumbnail(data: bytes, side_px: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of an image, so galleries stay light in the notebook."""
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        image.thumbnail((side_px, side_px))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _error_html(exc: Exception) -> str:
    return f"<span style='color:#b00'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"


# status --------------------------------------------------------------------------
class StatusWidget(widgets.VBox):
    """A classifier's Watson status and training progress, updated by the engine's training events.

    It subscribes to `wb.subscribe`, so the display updates itself while the cell is long finished.
    `statuses` lists every status it has seen (e.g. ready, retraining, ready); `wait()` is for headless runs.
    """

    def __init__(self, wb: Workbench, classifier_id: str) -> None:
        self.wb = wb
        self.classifier_id = classifier_id
        self.label = widgets.HTML()
        self.progress = widgets.IntProgress(min=0, max=1, value=0, description="embedding")
        self.statuses: list[str] = []
        self.stages: list[str] = []
        self._lock = threading.Lock()
        super().__init__([self.label, self.progress])
        self._show(wb.get_classifier(classifier_id), None)
        wb.subscribe(self.on_event)

    @property
    def status(self) -> str:
        return self.statuses[-1]

    def on_event(self, event: ClassifierEvent) -> None:
        """A training event (called on the training thread): refresh the display; never raises into the training."""
        if event.classifier_id != self.classifier_id:
            return
        try:
            self._on_event(event)
        except Exception as exc:  # a display problem must not fail the training that reported it
            self.label.value = _error_html(exc)

    def _on_event(self, event: ClassifierEvent) -> None:
        with self._lock:
            self.stages.append(event.stage)
            if event.stage == "deleted":
                self._show({"status": "deleted", "classifier_id": self.classifier_id}, event)
                return
            if event.stage == "embedding":
                self.progress.max, self.progress.value = max(event.total, 1), event.done
            elif event.stage in ("fitting", "ready"):
                self.progress.value = self.progress.max
            self._show(self.wb.get_classifier(self.classifier_id), event)

    def _show(self, record: dict, event: ClassifierEvent | None) -> None:
        status = record["status"]
        if not self.statuses or self.statuses[-1] != status:
            self.statuses.append(status)
        stage = f" · {event.stage}" if event is not None and event.stage not in SETTLED_STAGES else ""
        counts = f" {event.done}/{event.total} images" if event is not None and event.stage == "embedding" else ""
        colour = {"ready": "#070", "failed": "#b00", "deleted": "#555"}.get(status, "#a60")
        text = f"<b>{html.escape(self.classifier_id)}</b>: <span style='color:{colour}'>{status}</span>{stage}{counts}"
        if record.get("explanation"):
            text += f"<br><i>{html.escape(record['explanation'])}</i>"
        self.label.value = text
        self.progress.bar_style = {"ready": "success", "failed": "danger"}.get(status, "info")

    def wait(self, timeout: float | None = 600.0) -> dict:
        """Blocks until the training settles (for scripts and papermill; a person just watches the widget)."""
        record = self.wb.wait(self.classifier_id, timeout=timeout)
        with self._lock:
            self._show(record, None)
        return record

    def close(self) -> None:
        self.wb.unsubscribe(self.on_event)
        super().close()


# create or update ------------------------------------------------------------------
class ExamplesWidget(widgets.VBox):
    """Create a classifier, or update one, from uploaded zips or a picked folder of zips / image folders.

    Each set is named after its file; the one chosen under "negatives" becomes the negative examples.
    After `Create`/`Update` a `StatusWidget` (`.status`) shows the training live.
    """

    def __init__(self, wb: Workbench, classifier_id: str | None = None) -> None:
        self.wb = wb
        self.name = widgets.Text(description="name", placeholder="new classifier name")
        mine = [(c["name"] + " · " + c["classifier_id"], c["classifier_id"]) for c in wb.list_classifiers()["classifiers"]]
        self.target = widgets.Dropdown(options=[("new classifier", None), *mine], value=classifier_id, description="classifier")
        self.upload = widgets.FileUpload(accept=".zip", multiple=True, description="zips")
        self.folder = widgets.Text(description="folder", placeholder="folder of .zip files or image folders")
        self.negatives = widgets.Dropdown(options=[NO_NEGATIVES], description="negatives")
        self.submit_button = widgets.Button(description="Create", button_style="primary")
        self.message = widgets.HTML()
        self.status: StatusWidget | None = None
        self._status_box = widgets.VBox()
        for control in (self.upload, self.folder):
            control.observe(self._refresh_sets, names="value")
        self.target.observe(self._refresh_target, names="value")
        self.submit_button.on_click(lambda _: self.submit())
        super().__init__([self.target, self.name, widgets.HBox([self.upload, self.folder]), self.negatives,
                          self.submit_button, self.message, self._status_box])
        self._refresh_target()

    def sets(self) -> dict[str, bytes | Path]:
        """Every example set given so far, by name: uploaded zips (bytes) and the folder's entries (paths)."""
        found: dict[str, bytes | Path] = {}
        if self.folder.value.strip():
            found.update(folder_sets(self.folder.value.strip()))
        for upload in self.upload.value:
            found[set_name(upload["name"])] = bytes(upload["content"])
        return found

    def _refresh_sets(self, _=None) -> None:
        try:
            names = list(self.sets())
        except WorkbenchError as exc:
            self.message.value = _error_html(exc)
            return
        keep = self.negatives.value if self.negatives.value in names else NO_NEGATIVES
        self.negatives.options = [NO_NEGATIVES, *names]
        self.negatives.value = keep
        self.message.value = f"example sets: {', '.join(names) or '(none yet)'}"

    def _refresh_target(self, _=None) -> None:
        updating = self.target.value is not None
        self.submit_button.description = "Update" if updating else "Create"
        self.name.disabled = updating
        if updating:
            self._watch(self.target.value)

    def _watch(self, classifier_id: str) -> None:
        """Shows (and keeps) a live StatusWidget for the classifier being created or updated."""
        if self.status is not None and self.status.classifier_id == classifier_id:
            return
        if self.status is not None:
            self.status.close()
        self.status = StatusWidget(self.wb, classifier_id)
        self._status_box.children = [self.status]

    def submit(self) -> dict | None:
        """Creates or updates with the given sets (what the button does); returns the Watson record, or None on error."""
        try:
            sets = self.sets()
            negative = sets.pop(self.negatives.value, None) if self.negatives.value != NO_NEGATIVES else None
            if self.target.value is None:
                record = self.wb.create_classifier(self.name.value, sets, negative_examples=negative)
            else:
                record = self.wb.update_classifier(self.target.value, sets or None, negative_examples=negative)
        except WorkbenchError as exc:
            self.message.value = _error_html(exc)
            return None
        self._watch(record["classifier_id"])
        self.message.value = f"{'updated' if self.target.value else 'created'} {html.escape(record['classifier_id'])}"
        return record


# classify ----------------------------------------------------------------------------
def score_rows(answer: dict) -> pd.DataFrame:
    """One row per (image, classifier, class) of a Watson ClassifiedImages answer, highest score first."""
    rows = [
        {"image": image.get("image", ""), "classifier_id": result["classifier_id"], "class": c["class"],
         "score": c["score"], "type_hierarchy": c.get("type_hierarchy", "")}
        for image in answer.get("images", [])
        for result in image.get("classifiers", [])
        for c in result["classes"]
    ]
    frame = pd.DataFrame(rows, columns=["image", "classifier_id", "class", "score", "type_hierarchy"])
    return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


class ClassifyWidget(widgets.VBox):
    """Classify an uploaded image against chosen classifiers; the threshold slider re-filters the answer live.

    Scores are computed once (threshold 0) and filtered locally, so moving the slider costs nothing.
    """

    def __init__(self, wb: Workbench, classifier_ids: Sequence[str] | None = None, threshold: float = THRESHOLD) -> None:
        self.wb = wb
        ready = [c["classifier_id"] for c in wb.list_classifiers()["classifiers"] if c["status"] in ("ready", "retraining")]
        options = [GENERAL_CLASSIFIER_ID, *ready]
        chosen = [c for c in (classifier_ids or options) if c in options]
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="image")
        self.classifiers = widgets.SelectMultiple(options=options, value=chosen, description="classifiers", rows=min(4, len(options)))
        self.threshold = widgets.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="threshold",
                                             continuous_update=True, readout_format=".2f")
        self.image = widgets.Image(format="jpeg", width=IMAGE_WIDTH_PX)  # height follows the aspect ratio
        self.table = widgets.HTML()
        self.message = widgets.HTML()
        self.scores = score_rows({})
        self.upload.observe(self._on_upload, names="value")
        self.classifiers.observe(lambda _: self._rerun(), names="value")
        self.threshold.observe(lambda _: self._render(), names="value")
        self._last: tuple[bytes, str] | None = None
        controls = widgets.HBox([self.upload, self.classifiers, self.threshold])
        super().__init__([controls, self.message, widgets.HBox([self.image, self.table], layout=widgets.Layout(align_items="flex-start"))])
        self.add_class("workbench-classify")

    def classify(self, image: str | Path | bytes, name: str | None = None) -> pd.DataFrame:
        """Scores one image against the chosen classifiers and shows it; returns the rows at the current threshold."""
        data = Path(image).read_bytes() if isinstance(image, (str, Path)) else bytes(image)
        self._last = (data, name or (Path(image).name if isinstance(image, (str, Path)) else "image"))
        self._rerun()
        return self.results()

    def _on_upload(self, change) -> None:
        if change["new"]:
            upload = change["new"][0]
            self.classify(bytes(upload["content"]), upload["name"])

    def _rerun(self) -> None:
        if self._last is None:
            return
        data, name = self._last
        try:
            source = io.BytesIO(data)
            source.name = name  # Watson reports the image by its file name
            answer = self.wb.classify(source, classifier_ids=list(self.classifiers.value), threshold=0.0)
        except WorkbenchError as exc:
            self.message.value, self.scores = _error_html(exc), score_rows({})
        else:
            self.message.value = ""
            self.scores = score_rows(answer)
            self.image.value = thumbnail(data, IMAGE_WIDTH_PX * 2)
        self._render()

    def results(self) -> pd.DataFrame:
        """The classes at or above the slider's threshold (Watson's rule), highest first."""
        return self.scores[self.scores["score"] >= self.threshold.value].reset_index(drop=True)

    def _render(self) -> None:
        shown = self.results()
        extra = len(shown) - MAX_TABLE_ROWS
        table = shown.head(MAX_TABLE_ROWS)[["classifier_id", "class", "score"]]
        text = table.to_html(index=False, classes="workbench-results", float_format=lambda x: f"{x:.3f}")
        note = f"<p>{len(shown)} classes at threshold {self.threshold.value:.2f}" + (f", {extra} more not shown" if extra > 0 else "") + "</p>"
        self.table.value = note + text


class ThresholdPlots(widgets.VBox):
    """Score histograms and precision / recall / false-positive rate curves of a version, redrawn as the threshold moves."""

    def __init__(self, oof: OutOfFold, threshold: widgets.FloatSlider | None = None) -> None:
        self.oof = oof
        self.threshold = threshold or widgets.FloatSlider(value=THRESHOLD, min=0.0, max=1.0, step=0.01, description="threshold")
        self.histograms = widgets.Image(format="png")
        self.curves = widgets.Image(format="png")
        self.threshold.observe(lambda _: self.redraw(), names="value")
        super().__init__([self.threshold, self.histograms, self.curves])
        self.redraw()

    def redraw(self) -> None:
        o, t = self.oof, self.threshold.value
        self.histograms.value = figure_png(plots.score_histograms(o.scores, o.labels, o.classes, threshold=t))
        self.curves.value = figure_png(plots.threshold_curves(o.scores, o.labels, o.classes, threshold=t))


# reviewing training images ----------------------------------------------------------------
class Gallery(widgets.VBox):
    """Thumbnails of the misclassified and borderline training images of a version, with their scores."""

    def __init__(self, wb: Workbench, classifier_id: str, version: int | None = None,
                 threshold: float = THRESHOLD, margin: float = BORDERLINE_MARGIN, max_images: int = MAX_GALLERY_IMAGES) -> None:
        self.wb = wb
        self.oof = wb.out_of_fold(classifier_id, version)
        self.version = self.oof.version
        self.classifier_id = classifier_id
        self.max_images = max_images
        self.kind = widgets.ToggleButtons(options=["misclassified", "borderline"], value="misclassified")
        self.threshold = widgets.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="threshold")
        self.margin = widgets.FloatSlider(value=margin, min=0.0, max=0.5, step=0.01, description="margin")
        self.summary = widgets.HTML()
        self.grid = widgets.GridBox(layout=widgets.Layout(grid_template_columns=f"repeat({GALLERY_COLUMNS}, {THUMBNAIL_PX + 16}px)"))
        self.items = review_items(self.oof)
        for control in (self.kind, self.threshold, self.margin):
            control.observe(lambda _: self.refresh(), names="value")
        super().__init__([widgets.HBox([self.kind, self.threshold, self.margin]), self.summary, self.grid])
        self.refresh()

    def refresh(self) -> None:
        self.items = review_items(self.oof, self.threshold.value, self.margin.value)
        shown = self.items[self.items["kind"] == self.kind.value]
        self.summary.value = (f"version {self.version}: {(self.items['kind'] == 'misclassified').sum()} misclassified, "
                              f"{(self.items['kind'] == 'borderline').sum()} borderline of {len(self.oof.labels)} images")
        self.grid.children = [self._tile(row) for row in shown.head(self.max_images).itertuples()]

    def _tile(self, row) -> widgets.VBox:
        picture = widgets.Image(value=thumbnail(self.wb.example_image(self.classifier_id, row.sha256)), format="jpeg", width=THUMBNAIL_PX)
        caption = widgets.HTML(f"<small>{html.escape(Path(row.source).name)}<br>true: {html.escape(row.label)}"
                               f"<br>top: {html.escape(row.predicted)} {row.top_score:.2f}</small>")
        return widgets.VBox([picture, caption])


# where it looked ----------------------------------------------------------------------------------
def overlay_jpeg(image: Image.Image, heatmap, side_px: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of an image with a class's heatmap over it (`plots.overlay_image`)."""
    picture = plots.overlay_image(image, heatmap)
    picture.thumbnail((side_px, side_px))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class ExplainView(widgets.VBox):
    """Where each classifier looked on one image: per classifier, its top classes as overlays with their scores."""

    def __init__(self, wb: Workbench, image: str | Path | bytes, classifier_ids: Sequence[str], top: int = 3) -> None:
        self.explanations = {cid: wb.explain(image, cid, top=top) for cid in classifier_ids}
        rows = []
        for cid, found in self.explanations.items():
            tiles = [widgets.VBox([widgets.Image(value=overlay_jpeg(e.image, e.heatmap, IMAGE_WIDTH_PX), format="jpeg",
                                                 width=IMAGE_WIDTH_PX * 2 // 3),
                                   widgets.HTML(f"<small>{html.escape(e.class_name)} {e.score:.3f}</small>")]) for e in found]
            rows.append(widgets.VBox([widgets.HTML(f"<b>{html.escape(cid)}</b>"), widgets.HBox(tiles)]))
        super().__init__(rows)


class OverlayGallery(widgets.VBox):
    """The misclassified training images of a version (`review_items`), each with where its true class's head looked."""

    def __init__(self, wb: Workbench, classifier_id: str, version: int | None = None, threshold: float = THRESHOLD,
                 max_images: int = MAX_GALLERY_IMAGES) -> None:
        oof = wb.out_of_fold(classifier_id, version)
        items = review_items(oof, threshold)
        self.items = items[items["kind"] == "misclassified"].head(max_images)
        tiles = [self._tile(wb, classifier_id, row, oof.classes) for row in self.items.itertuples()]
        grid = widgets.GridBox(tiles, layout=widgets.Layout(grid_template_columns=f"repeat({GALLERY_COLUMNS}, {THUMBNAIL_PX + 16}px)"))
        super().__init__([widgets.HTML(f"version {oof.version}: {len(self.items)} misclassified, with where their class looked"), grid])

    @staticmethod
    def _tile(wb: Workbench, classifier_id: str, row, classes: Sequence[str]) -> widgets.VBox:
        """A negative example shows where the class it was mistaken for looked; a positive, its own class."""
        data = wb.example_image(classifier_id, row.sha256)
        [looked] = wb.explain(data, classifier_id, class_name=row.label if row.label in classes else None, top=1)
        caption = (f"<small>{html.escape(Path(row.source).name)}<br>true: {html.escape(row.label)}"
                   f"<br>map: {html.escape(looked.class_name)} {looked.score:.2f}</small>")
        picture = widgets.Image(value=overlay_jpeg(looked.image, looked.heatmap), format="jpeg", width=THUMBNAIL_PX)
        return widgets.VBox([picture, widgets.HTML(caption)])


__all__ = ["ClassifyWidget", "ExamplesWidget", "ExplainView", "Gallery", "OverlayGallery", "StatusWidget", "ThresholdPlots",
           "score_rows"]
