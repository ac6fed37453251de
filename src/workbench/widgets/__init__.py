"""Notebook front: ipywidgets to create or update a classifier, watch it train, classify images, review training images.

Widgets hold no logic of their own: they call the `Workbench` and draw with `workbench.plots`.
Each also works undisplayed (headless papermill runs read the same values a person sees).
Only `Workbench` and public types are used here (no store, jobs or tracking internals).
"""

from __future__ import annotations

import html
import io
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from .. import (
    ClassifierEvent,
    Interpretation,
    OutOfFold,
    folder_images,
    folder_sets,
    image_paths,
    label_from_name,
    parse_labels,
    plots,
    set_name,
)
from ..analysis.review import BORDERLINE_MARGIN, calibration_summary, review_items
from ..core.errors import InvalidExamples, InvalidRequest, LimitExceeded, WorkbenchError
from ..core.vocabulary import FOOD_CLASSIFIER_ID, GENERAL_CLASSIFIER_ID, THRESHOLD
from ..service.workbench import Workbench

NO_NEGATIVES = "(none)"
NEW_CLASSIFIER = "(new classifier)"  # the target dropdown's "create" entry (None would show as a blank)
MAX_TABLE_ROWS = 30  # classify results shown at once; the rest are counted
THUMBNAIL_PX = 128
TILE_PX = 176  # a gallery / results tile: the thumbnail plus room for a caption line
GALLERY_COLUMNS = 6
MAX_GALLERY_IMAGES = 24
IMAGE_WIDTH_PX = 320
SETTLED_STAGES = ("ready", "failed", "deleted", "promoted")
LATEST = "latest"  # the serving picker's "no pin" entry (`Workbench.promote(cid, "latest")`)
LATEST_LABEL = "newest (each training serves)"
REDRAW_INTERVAL_S = 0.2  # threshold plots redraw at most this often while the slider moves
RESULTS_BATCH = 16  # images per classify call of a ResultsGrid
TOP_CLASSES = 3  # classes per classifier under a ResultsGrid thumbnail
LAB_UPLOAD_ENV = "WORKBENCH_LAB_UPLOAD_BYTES"  # set by jupyter_server_config.py (`make lab`): its websocket limit
TORNADO_MESSAGE_BYTES = 10 * 1024 * 1024  # tornado's default websocket_max_message_size: Jupyter's, unless raised
LABELS_FILE = "LABELS.txt"  # a folder's ground truth for ResultsGrid: one `file<TAB>label` a line


def figure_png(figure: Figure, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (for Image widgets; no pyplot involved)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def thumbnail(data: bytes, side_px: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of an image, so galleries stay light in the notebook."""
    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB")
        picture.thumbnail((side_px, side_px))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _error_html(exc: Exception) -> str:
    return f"<span style='color:#b00'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"


def _file_name_html(name: str) -> str:
    """A file name on one line of a tile: cut with an ellipsis when long, the full name in its tooltip."""
    return (
        f"<div title='{html.escape(name, quote=True)}' style='width:{TILE_PX - 8}px; overflow:hidden; "
        f"text-overflow:ellipsis; white-space:nowrap'>{html.escape(name)}</div>"
    )


def top_score_text(name: str, score: float, threshold: float) -> str:
    """`husky 0.93`, or `husky 0.48 (below 0.5)` when the best class does not reach the threshold."""
    below = f" (below {threshold:g})" if score < threshold else ""
    return f"{name} {score:.2f}{below}"


class Debounced:
    """Runs `action` on a timer thread at most once per `interval_s`, always once more after the last `trigger()`.

    A slider sends many values per second; drawing each one queues seconds of stale plots. The first
    trigger after a quiet spell runs at once (no added latency); triggers while a run is due or in
    progress are folded into one more run, `interval_s` after the previous one started. The action
    reads the slider itself when it runs, so the value it draws is always the latest one.
    """

    def __init__(self, action: Callable[[], None], interval_s: float = REDRAW_INTERVAL_S) -> None:
        self.action = action
        self.interval_s = interval_s
        self._lock = threading.Lock()  # guards _timer, _pending and _started
        self._running = threading.Lock()  # one action at a time
        self._timer: threading.Timer | None = None
        self._pending = 0  # scheduled or running actions
        self._started = -math.inf  # time.monotonic() when the last run started
        self._idle = threading.Condition(self._lock)

    def trigger(self) -> None:
        """Asks for a run; one already scheduled and not yet started covers this request too."""
        with self._lock:
            if self._timer is not None:
                return
            self._pending += 1
            delay = max(0.0, self._started + self.interval_s - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        try:
            with self._running:
                with self._lock:
                    self._timer = None  # from here on, a new trigger schedules another run after this one
                    self._started = time.monotonic()
                self.action()
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Blocks until no run is scheduled or running (for tests and headless runs); False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


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
        self.serving = ServingPicker(wb, classifier_id)
        self.statuses: list[str] = []
        self.stages: list[str] = []
        self._lock = threading.Lock()
        super().__init__([self.label, self.progress, self.serving])
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
                self.progress.layout.display = "none"  # nothing will be embedded for it again: no empty bar
                self.serving.gone()
                return
            if event.stage in ("ready", "promoted"):  # a new version, or another version serves
                self.serving.refresh()
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


class ServingPicker(widgets.HBox):
    """Which version of a classifier serves: picking a version promotes and pins it, "newest" lifts the pin.

    Changing the dropdown (in the browser or from code) calls `wb.promote`; `refresh()` re-reads the
    versions and the pin without promoting anything (StatusWidget calls it on training and promote events).
    """

    def __init__(self, wb: Workbench, classifier_id: str) -> None:
        self.wb = wb
        self.classifier_id = classifier_id
        self.dropdown = widgets.Dropdown(options=[(LATEST_LABEL, LATEST)], value=LATEST, description="serving")
        self.note = widgets.HTML()
        self._refresher: int | None = None  # the thread writing the dropdown in refresh(): its changes promote nothing
        self._lock = threading.Lock()  # one refresh at a time (never held while promoting: events call refresh)
        self.dropdown.observe(self._picked, names="value")
        super().__init__([self.dropdown, self.note])
        self.refresh()

    def refresh(self) -> None:
        """Shows the stored versions and the pin (or "newest"), and which version serves."""
        with self._lock:
            record = self.wb.get_classifier(self.classifier_id)
            numbers = [v["version"] for v in self.wb.versions(self.classifier_id)]
            self._refresher = threading.get_ident()
            try:
                self.dropdown.options = [(LATEST_LABEL, LATEST), *((f"v{n}", n) for n in numbers)]
                self.dropdown.value = record.get("pinned_version") or LATEST
            finally:
                self._refresher = None
            self.dropdown.disabled = not numbers
            serving = record.get("serving_version")
            pinned = " (pinned: trainings add versions without serving them)" if record.get("pinned_version") else ""
            self.note.value = f"serving v{serving}{pinned}" if serving else "<i>no trained version yet</i>"

    def gone(self) -> None:
        """The classifier was deleted: nothing left to pick."""
        self.dropdown.disabled = True
        self.note.value = "<i>deleted</i>"

    def _picked(self, change: dict) -> None:
        """A person picked an entry: promote it (a version) or lift the pin (newest)."""
        if self._refresher == threading.get_ident():
            return
        try:
            self.wb.promote(self.classifier_id, change["new"])
        except WorkbenchError as exc:
            self.refresh()  # back to what serves
            self.note.value = _error_html(exc)
            return
        self.refresh()


# create or update ------------------------------------------------------------------
class ExamplesWidget(widgets.VBox):
    """Create a classifier, or update one, from uploaded zips or from zips and image folders on the kernel's disk.

    Each set is named after its file; the one chosen under "negatives" becomes the negative examples.
    A browser upload travels to the kernel as one websocket message, so it is capped by the Jupyter server
    (`upload_limit_bytes()`, said beside the button); the `folder` box takes a folder of zips and image
    folders, or one zip, on the kernel's disk, of any size, and `picked` chooses among its sets.
    After `Create`/`Update` a `StatusWidget` (`.status`) shows the training live.
    """

    def __init__(self, wb: Workbench, classifier_id: str | None = None) -> None:
        self.wb = wb
        self.name = widgets.Text(description="name", placeholder="new classifier name")
        mine = [(_target_label(c), c["classifier_id"]) for c in wb.list_classifiers()["classifiers"]]
        self.target = widgets.Dropdown(
            options=[("new classifier", NEW_CLASSIFIER), *mine],
            value=classifier_id or NEW_CLASSIFIER,
            description="classifier",
        )
        self.upload = widgets.FileUpload(accept=".zip", multiple=True, description="zips")
        self.upload_note = widgets.HTML(upload_limit_html())
        self.folder = widgets.Text(
            description="path",
            placeholder="folder of .zip files or image folders, or a .zip",
            layout=widgets.Layout(width="32em"),
        )
        self.folder_note = widgets.HTML(
            f"<small>on the kernel's disk, any size (relative to <code>{html.escape(str(Path.cwd()))}</code>)</small>"
        )
        self.picked = widgets.SelectMultiple(description="sets there", rows=4, layout=widgets.Layout(display="none"))
        self.negatives = widgets.Dropdown(options=[NO_NEGATIVES], description="negatives")
        self.submit_button = widgets.Button(description="Create", button_style="primary")
        self.message = widgets.HTML()
        self.status: StatusWidget | None = None
        self._status_box = widgets.VBox()
        for control in (self.upload, self.picked):
            control.observe(self._refresh_sets, names="value")
        self.folder.observe(self._refresh_path, names="value")
        self.target.observe(self._refresh_target, names="value")
        self.submit_button.on_click(lambda _: self.submit())
        super().__init__(
            [
                self.target,
                self.name,
                widgets.HBox([self.upload, self.upload_note]),
                widgets.HBox([self.folder, self.folder_note]),
                self.picked,
                self.negatives,
                self.submit_button,
                self.message,
                self._status_box,
            ]
        )
        self._refresh_target()

    def sets(self) -> dict[str, bytes | Path]:
        """Every example set given so far, by name: the sets picked at the path (paths), then uploaded zips (bytes).

        Raises InvalidExamples for a path that is neither a folder nor a .zip, or an upload that is not a .zip,
        and LimitExceeded for an uploaded zip over the engine's bytes per zip.
        """
        chosen = set(self.picked.value)
        found: dict[str, bytes | Path] = {name: path for name, path in self._path_sets().items() if name in chosen}
        for upload in self.upload.value:
            found[set_name(upload["name"])] = self._upload_bytes(upload)
        return found

    def _path_sets(self) -> dict[str, Path]:
        """The sets at the path box: a folder's zips and sub-folders, or one .zip file; {} when it is empty."""
        text = self.folder.value.strip()
        if not text:
            return {}
        path = Path(text).expanduser()
        if path.is_file() and path.suffix.lower() == ".zip":
            return {set_name(path.name): path}
        if not path.is_dir():
            what = "is not a folder or a .zip file" if path.exists() else "does not exist"
            raise InvalidExamples(f"{text!r} {what} on the kernel's disk (relative paths start at {str(Path.cwd())!r})")
        return folder_sets(path)

    def _upload_bytes(self, upload: Mapping) -> bytes:
        """An uploaded zip's bytes, once its name and size pass (said in the widget before any image is read)."""
        name, size = upload["name"], len(upload["content"])
        if not name.lower().endswith(".zip"):
            raise InvalidExamples(
                f"{name!r} is not a .zip: upload one zip of images per class, or give a folder of "
                "image folders in the path box"
            )
        if size > self.wb.limits.max_zip_bytes:
            raise LimitExceeded(
                f"{name!r} holds {_mib(size)}; a zip may hold at most {_mib(self.wb.limits.max_zip_bytes)} "
                "(Watson's limit): split it into several zips of one class"
            )
        return bytes(upload["content"])

    def _refresh_path(self, _=None) -> None:
        """Lists the sets at the new path, all picked, then refreshes the form (which says what is wrong with it)."""
        try:
            found = self._path_sets()
        except WorkbenchError:
            found = {}
        self.picked.options = [(f"{name} · {_size_text(path)}", name) for name, path in found.items()]
        self.picked.value = tuple(found)
        self.picked.layout.display = None if found else "none"
        self._refresh_sets()

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

    @property
    def creating(self) -> bool:
        """True while the form creates a new classifier (its button says Create), False once it targets one."""
        return self.target.value == NEW_CLASSIFIER

    def _refresh_target(self, _=None) -> None:
        updating = not self.creating
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
        """Creates or updates with the given sets (what the button does); returns the Watson record, None on error."""
        try:
            sets = self.sets()
            negative = sets.pop(self.negatives.value, None) if self.negatives.value != NO_NEGATIVES else None
            creating = self.creating
            if creating:
                record = self.wb.create_classifier(self.name.value, sets, negative_examples=negative)
            else:
                record = self.wb.update_classifier(
                    self.target.value, positive_examples=sets or None, negative_examples=negative
                )
        except WorkbenchError as exc:
            self.message.value = _error_html(exc)
            return None
        if creating:  # from now on the form updates what it created: a second click must not make a second one
            self.target.options = [*self.target.options, (_target_label(record), record["classifier_id"])]
            self.target.value = record["classifier_id"]
        self._watch(record["classifier_id"])
        self.message.value = f"{'created' if creating else 'updated'} {html.escape(record['classifier_id'])}"
        return record


def _target_label(record: dict) -> str:
    return record["name"] + " · " + record["classifier_id"]


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size % 2**20 else f"{size // 2**20} MiB"


def _size_text(path: Path) -> str:
    """`2.1 MiB` for a zip, `folder` for a folder (walking it to add up its files could take long)."""
    return _mib(path.stat().st_size) if path.is_file() else "folder"


def upload_limit_bytes() -> int | None:
    """What one browser upload may carry to this kernel: the limit `make lab` gave the Jupyter server (its
    `jupyter_server_config.py` puts it in WORKBENCH_LAB_UPLOAD_BYTES, which kernels inherit); None when unknown."""
    raw = os.environ.get(LAB_UPLOAD_ENV, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None


def upload_limit_html() -> str:
    """The note beside the form's upload button: how much an upload may carry, and the path box for more."""
    limit = upload_limit_bytes()
    if limit is not None:
        return (
            f"<small>up to {_mib(limit)} in all per pick (this Jupyter server's limit); "
            "bigger: give their path below</small>"
        )
    return (
        f"<small>up to {_mib(TORNADO_MESSAGE_BYTES)} in all per pick (Jupyter's default: a bigger upload is lost "
        'as "Connection lost"; <code>make lab</code> raises it to 256 MiB); bigger: give their path below</small>'
    )


# classify ----------------------------------------------------------------------------
def score_rows(answer: dict) -> pd.DataFrame:
    """One row per (image, classifier, class) of a Watson ClassifiedImages answer, highest score first."""
    rows = [
        {
            "image": image.get("image", ""),
            "classifier_id": result["classifier_id"],
            "class": c["class"],
            "score": c["score"],
            "type_hierarchy": c.get("type_hierarchy", ""),
        }
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

    def __init__(
        self, wb: Workbench, classifier_ids: Sequence[str] | None = None, threshold: float = THRESHOLD
    ) -> None:
        self.wb = wb
        ready = [
            c["classifier_id"] for c in wb.list_classifiers()["classifiers"] if c["status"] in ("ready", "retraining")
        ]
        options = [GENERAL_CLASSIFIER_ID, FOOD_CLASSIFIER_ID, *ready]  # food is offered, not chosen by default
        chosen = [c for c in (classifier_ids or [GENERAL_CLASSIFIER_ID, *ready]) if c in options]
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="image")
        self.classifiers = widgets.SelectMultiple(
            options=options, value=chosen, description="classifiers", rows=min(4, len(options))
        )
        self.threshold = widgets.FloatSlider(
            value=threshold,
            min=0.0,
            max=1.0,
            step=0.01,
            description="threshold",
            continuous_update=True,
            readout_format=".2f",
        )
        self.image = widgets.Image(format="jpeg", width=IMAGE_WIDTH_PX)  # height follows the aspect ratio
        self.table = widgets.HTML()
        self.message = widgets.HTML()
        self.scores = score_rows({})
        self.upload.observe(self._on_upload, names="value")
        self.classifiers.observe(lambda _: self._rerun(), names="value")
        self.threshold.observe(lambda _: self._render(), names="value")
        self._last: tuple[bytes, str] | None = None
        controls = widgets.HBox([self.upload, self.classifiers, self.threshold])
        super().__init__(
            [
                controls,
                self.message,
                widgets.HBox([self.image, self.table], layout=widgets.Layout(align_items="flex-start")),
            ]
        )
        self.add_class("workbench-classify")

    def classify(self, image: str | Path | bytes, *, name: str | None = None) -> pd.DataFrame:
        """Scores one image against the chosen classifiers and shows it; returns the rows at the current threshold."""
        data = Path(image).read_bytes() if isinstance(image, (str, Path)) else bytes(image)
        self._last = (data, name or (Path(image).name if isinstance(image, (str, Path)) else "image"))
        self._rerun()
        return self.results()

    def _on_upload(self, change) -> None:
        if change["new"]:
            upload = change["new"][0]
            self.classify(bytes(upload["content"]), name=upload["name"])

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
            [image] = answer["images"]
            self.scores = score_rows(answer)
            if "error" in image:  # not an image: say so and keep showing the last good one
                self.message.value = f"<span style='color:#b00'>{html.escape(image['error']['description'])}</span>"
            else:
                self.message.value = ""
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
        note = (
            f"<p>{len(shown)} classes at threshold {self.threshold.value:.2f}"
            + (f", {extra} more not shown" if extra > 0 else "")
            + "</p>"
        )
        self.table.value = note + text


def _number(value: float) -> str:
    return "–" if value != value else f"{value:.3f}"  # NaN (nothing called, no positives) is a blank


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]], css_class: str) -> str:
    """A plain HTML table, floats to 3 decimals (`DataFrame.to_html` takes ~10 ms a call: too slow for a slider)."""

    def cell(value: object, tag: str = "td") -> str:
        text = _number(value) if isinstance(value, float) else html.escape(str(value))
        return f"<{tag}>{text}</{tag}>"

    head = "".join(cell(h, "th") for h in header)
    body = "".join(f"<tr>{cell(row[0], 'th')}{''.join(cell(v) for v in row[1:])}</tr>" for row in rows)
    return f"<table class='{css_class}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metrics_html(classes: Sequence[str], values: np.ndarray, threshold: float) -> str:
    """Per-class numbers at a threshold (`Interpretation.metric_values`) as a small HTML table (blank where
    nothing was called)."""
    rows = [[name, *row[:4]] for name, row in zip(classes, values.tolist(), strict=True)]
    text = html_table(
        ["class", "precision", "recall", "false-positive rate", "AP"], rows, "workbench-threshold-metrics"
    )
    return f"<p>At threshold {threshold:.2f} (out-of-fold; AP is over every threshold):</p>" + text


def confusion_html(counts: np.ndarray, names: Sequence[str], threshold: float) -> str:
    """A confusion matrix (`Interpretation.confusion_counts`, `names` its rows and columns) as an HTML table: true
    class by row, predicted class by column, each cell shaded by its share of the row, the right answers in bold."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    rows = []
    for r, (actual, row) in enumerate(zip(names, counts.tolist(), strict=True)):
        total = max(sum(row), 1)
        cells = []
        for c, count in enumerate(row):
            shade = f"background:rgba(31,119,180,{0.8 * count / total:.2f})" if count else ""
            colour = ";color:white" if count / total > 0.5 else ""
            text = f"<b>{count}</b>" if r == c else str(count)
            cells.append(f"<td style='text-align:right;{shade}{colour}'>{text}</td>")
        rows.append(f"<tr><th>{html.escape(actual)}</th>{''.join(cells)}</tr>")
    return (
        f"<p>Confusion matrix at threshold {threshold:.2f} (out-of-fold; rows: true class, columns: top class "
        f"at the threshold):</p><table class='workbench-confusion'><tr><th>actual \\ predicted</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
    )


def most_confused_html(pairs: Sequence[tuple[str, str, int]], threshold: float, shown: int = 8) -> str:
    """`Interpretation.most_confused` in words: the pairs most often mixed up at the threshold."""
    if not pairs:
        return f"<p>Most confused at {threshold:.2f}: nothing, every image gets its own class.</p>"
    items = "".join(f"<li>{html.escape(a)} taken for {html.escape(p)}: {n}</li>" for a, p, n in pairs[:shown])
    more = f"<li>{len(pairs) - shown} more pairs</li>" if len(pairs) > shown else ""
    return f"<p>Most confused at {threshold:.2f} (true class taken for another):</p><ul>{items}{more}</ul>"


def top_losses_html(frame: pd.DataFrame, predicted: Sequence[str]) -> str:
    """`Interpretation.top_losses` as a small table: file name, true class, the class predicted at the threshold
    (`predicted`, one per image of the interpretation, looked up by the frame's index), loss, true class's score."""
    rows = [
        [Path(name).name, actual, predicted[i], float(loss), float(score)]
        for i, name, actual, loss, score in zip(
            frame.index, frame["name"], frame["actual"], frame["loss"], frame["actual_score"], strict=True
        )
    ]
    text = html_table(["image", "actual", "predicted", "loss", "actual score"], rows, "workbench-top-losses")
    return "<p>Highest losses (out-of-fold log loss, averaged over the classes):</p>" + text


def calibration_html(oof: OutOfFold) -> str:
    """ECE and Brier score of the held-out scores, in words a reader can act on."""
    ece, brier = calibration_summary(oof)
    return (
        f"<p>Calibration (out-of-fold): ECE {ece:.3f}, Brier score {brier:.4f}. "
        f"A score of 0.8 is right about {max(0.0, 0.8 - ece):.0%}-{min(1.0, 0.8 + ece):.0%} of the time.</p>"
    )


class ThresholdPlots(widgets.VBox):
    """Precision, recall and false-positive rate per class at the slider's threshold, the confusion matrix and the
    pairs most confused there, the highest losses, with score histograms, threshold curves and precision-recall
    curves of a version, all redrawn together as the threshold moves.

    What does not move with the threshold is computed and drawn once: the `Interpretation` (sorted scores, losses,
    AP) and each figure's background. A move costs a binary search per class and per confusion cell, and
    redraws only the threshold lines and points of each figure (`plots.LiveFigure`); redraws are throttled
    to one per `interval_s` (the first at once, the last value always drawn).
    """

    def __init__(
        self,
        oof: OutOfFold,
        threshold: widgets.FloatSlider | None = None,
        interval_s: float = REDRAW_INTERVAL_S,
        top_losses: int = 5,
    ) -> None:
        self.oof = oof
        self.interpretation = Interpretation.from_out_of_fold(oof)
        self.threshold = threshold or widgets.FloatSlider(
            value=THRESHOLD, min=0.0, max=1.0, step=0.01, description="threshold"
        )
        self.numbers = widgets.HTML()
        self.confusion = widgets.HTML()
        self.confused = widgets.HTML()
        self.losses = widgets.HTML()
        self.histograms = widgets.Image(format=plots.LiveFigure.format)
        self.curves = widgets.Image(format=plots.LiveFigure.format)
        self.pr_curves = widgets.Image(format=plots.LiveFigure.format)
        t = self.threshold.value
        self.figures = {
            name: plots.LiveFigure(draw(oof.scores, oof.labels, oof.classes, threshold=t))
            for name, draw in (
                ("histograms", plots.score_histograms),
                ("curves", plots.threshold_curves),
                ("pr_curves", plots.pr_curves),
            )
        }
        # calibration does not move with the threshold: drawn once
        self.reliability = widgets.Image(
            value=figure_png(plots.reliability_diagram(oof.scores, oof.labels, oof.classes)), format="png"
        )
        self.calibration = widgets.HTML(calibration_html(oof))
        self.worst = self.interpretation.top_losses(top_losses)  # losses do not move with the threshold
        self.drawn_threshold: float | None = None
        self.redraws = 0
        self._drawing = threading.Lock()
        self._debounced = Debounced(self.redraw, interval_s)
        self.threshold.observe(lambda _: self._debounced.trigger(), names="value")
        numbers = widgets.HBox([self.threshold, self.numbers], layout=widgets.Layout(align_items="flex-start"))
        mistakes = widgets.HBox(
            [self.confusion, self.confused, self.losses],
            layout=widgets.Layout(align_items="flex-start", grid_gap="24px"),
        )
        super().__init__(
            [numbers, mistakes, self.histograms, self.curves, self.pr_curves, self.calibration, self.reliability]
        )
        self.add_class("workbench-threshold-plots")
        self.redraw()

    def redraw(self) -> None:
        """Draws the numbers and every plot for the slider's current value, in one go, so they always agree."""
        with self._drawing:
            t = self.threshold.value
            found = self.interpretation
            values = found.metric_values(t)  # bare arrays here: a DataFrame costs more than every number in it
            counts = found.confusion_counts(t)
            points = {
                name: (recall, precision)
                for name, (precision, recall) in zip(found.classes, values[:, :2].tolist(), strict=True)
            }
            pictures = {name: live.image(t, points) for name, live in self.figures.items()}
            self.numbers.value = metrics_html(found.classes, values, t)
            self.confusion.value = confusion_html(counts, [*found.classes, found.none], t)
            self.confused.value = most_confused_html(found.most_confused(1, t), t)
            self.losses.value = top_losses_html(self.worst, found.predicted(t))
            self.histograms.value, self.curves.value, self.pr_curves.value = (
                pictures["histograms"],
                pictures["curves"],
                pictures["pr_curves"],
            )
            self.drawn_threshold = t
            self.redraws += 1

    @property
    def metrics(self) -> pd.DataFrame:
        """The per-class numbers shown (`Interpretation.metrics` at the drawn threshold)."""
        return self.interpretation.metrics(self._shown())

    @property
    def confusion_matrix(self) -> pd.DataFrame:
        """The confusion matrix shown (`Interpretation.confusion_matrix` at the drawn threshold)."""
        return self.interpretation.confusion_matrix(self._shown())

    @property
    def most_confused(self) -> list[tuple[str, str, int]]:
        """The pairs shown as most confused (`Interpretation.most_confused` at the drawn threshold)."""
        return self.interpretation.most_confused(1, self._shown())

    def _shown(self) -> float:
        return self.drawn_threshold if self.drawn_threshold is not None else self.threshold.value

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Blocks until the last slider move is drawn (headless runs and tests); False on timeout."""
        return self._debounced.wait(timeout)


# reviewing training images ----------------------------------------------------------------
class ExampleTile(widgets.VBox):
    """One gallery image with its caption and buttons that remove it from training or move it to another class."""

    def __init__(self, gallery: Gallery, row, picture: widgets.Image, caption: str) -> None:
        self.gallery = gallery
        self.label: str | None = None if row.label == plots.NEGATIVE_NAME else row.label
        self.sha256 = row.sha256
        self.example_id = gallery.example_ids.get((self.label, row.sha256))  # None: no longer trained on
        self.caption = widgets.HTML(caption)
        self.remove_button = widgets.Button(
            description="remove", icon="trash", tooltip="take it out of training", layout=widgets.Layout(width="80px")
        )
        self.new_class = widgets.Combobox(
            options=[*gallery.oof.classes, plots.NEGATIVE_NAME],
            placeholder="new class",
            ensure_option=False,
            layout=widgets.Layout(width="90px"),
        )
        self.relabel_button = widgets.Button(
            description="relabel",
            tooltip="train it under the class typed or picked",
            layout=widgets.Layout(width="80px"),
        )
        self.remove_button.on_click(lambda _: self.gallery.curate(self, remove=True))
        self.relabel_button.on_click(lambda _: self.gallery.curate(self, remove=False))
        if self.example_id is None:
            self._done("<i>no longer trained on</i>")
        super().__init__(
            [picture, self.caption, widgets.HBox([self.remove_button, self.relabel_button]), self.new_class],
            layout=widgets.Layout(width=f"{TILE_PX}px"),
        )

    def _done(self, note: str) -> None:
        """Disables the tile's buttons once its example changed (or cannot), and says why under the caption."""
        for control in (self.remove_button, self.relabel_button, self.new_class):
            control.disabled = True
        self.caption.value += f"<br><small>{note}</small>"


class Gallery(widgets.VBox):
    """Thumbnails of the misclassified and borderline training images of a version, with their scores.

    Each tile's buttons remove its example from training or relabel it (`Workbench.remove_examples`,
    `relabel_examples`): one change each, which queues a retraining; the tiles keep this version's scores.
    """

    def __init__(
        self,
        wb: Workbench,
        classifier_id: str,
        version: int | None = None,
        threshold: float = THRESHOLD,
        margin: float = BORDERLINE_MARGIN,
        max_images: int = MAX_GALLERY_IMAGES,
    ) -> None:
        self.wb = wb
        self.oof = wb.out_of_fold(classifier_id, version=version)
        self.version = self.oof.version
        self.classifier_id = classifier_id
        self.max_images = max_images
        self.kind = widgets.ToggleButtons(options=["misclassified", "borderline"], value="misclassified")
        self.threshold = widgets.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="threshold")
        self.margin = widgets.FloatSlider(value=margin, min=0.0, max=0.5, step=0.01, description="margin")
        self.summary = widgets.HTML()
        self.message = widgets.HTML()  # what the last remove / relabel did, or why it was refused
        self.note = widgets.HTML()  # says so when the chosen view is empty
        self.example_ids = self._example_ids()
        self.grid = widgets.GridBox(
            layout=widgets.Layout(grid_template_columns=f"repeat({GALLERY_COLUMNS}, {TILE_PX}px)")
        )
        self.items = review_items(self.oof)
        for control in (self.kind, self.threshold, self.margin):
            control.observe(lambda _: self.refresh(), names="value")
        super().__init__(
            [widgets.HBox([self.kind, self.threshold, self.margin]), self.summary, self.message, self.note, self.grid]
        )
        self.refresh()

    def _example_ids(self) -> dict[tuple[str | None, str], int]:
        """(class or None, sha256) -> the id of the example now trained on with that label (the first, if twice)."""
        found: dict[tuple[str | None, str], int] = {}
        for example in self.wb.examples(self.classifier_id):
            found.setdefault((example.class_name, example.sha256), example.example_id)
        return found

    def curate(self, tile: ExampleTile, *, remove: bool) -> None:
        """What a tile's buttons do: remove its example, or relabel it to the class in its box; says what happened."""
        if tile.example_id is None:
            return
        try:
            if remove:
                change = self.wb.remove_examples(self.classifier_id, [tile.example_id])
                note = "removed"
            else:
                typed = tile.new_class.value.strip()
                if not typed:
                    raise InvalidRequest("Type or pick the new class first")
                target = None if typed == plots.NEGATIVE_NAME else typed
                change = self.wb.relabel_examples(self.classifier_id, {tile.example_id: target})
                note = f"relabelled to {target if target is not None else plots.NEGATIVE_NAME}"
        except WorkbenchError as exc:
            self.message.value = _error_html(exc)
            return
        self.example_ids = self._example_ids()
        tile._done(html.escape(note))
        self.message.value = (
            f"example {tile.example_id} {html.escape(note)}; "
            f"{html.escape(self.classifier_id)} is {html.escape(str(change.status))}"
        )

    def refresh(self) -> None:
        self.items = review_items(self.oof, self.threshold.value, self.margin.value)
        shown = self.items[self.items["kind"] == self.kind.value]
        self.summary.value = (
            f"version {self.version}: {(self.items['kind'] == 'misclassified').sum()} misclassified, "
            f"{(self.items['kind'] == 'borderline').sum()} borderline of {len(self.oof.labels)} images"
        )
        self.note.value = (
            "" if len(shown) else f"<i>no {self.kind.value} images at threshold {self.threshold.value:.2f}</i>"
        )
        self.grid.children = [self._tile(row) for row in shown.head(self.max_images).itertuples()]

    def caption(self, row) -> str:
        """A tile's caption: file name (full name in the tooltip), true class, top class and score."""
        return (
            f"<small>{_file_name_html(Path(row.source).name)}true: {html.escape(row.label)}"
            f"<br>top: {html.escape(top_score_text(row.top_class, row.top_score, self.threshold.value))}</small>"
        )

    def _tile(self, row) -> ExampleTile:
        picture = widgets.Image(
            value=thumbnail(self.wb.example_image(self.classifier_id, row.sha256)), format="jpeg", width=THUMBNAIL_PX
        )
        return ExampleTile(self, row, picture, self.caption(row))


# a grid of predictions -------------------------------------------------------------------------
class ResultsGrid(widgets.VBox):
    """Images with their top classes and scores, in a grid (fastai's `show_results` for a classifier).

    Scores come from one `wb.classify` call per `batch_size` images at threshold 0 and are filtered
    here, so moving the threshold only rewrites captions. `scores` holds every (image, classifier, class) score.
    A folder is walked like `classify_iter` walks it (sub-folders too).

    Labelled images are marked right or wrong: a folder with a `LABELS.txt` (`file<TAB>label` lines), a folder of
    per-class sub-folders (or `{class}_positive_examples` folders; `negatives/` for none of the classes), or
    `labels` given as {file name: label}. `labels=False` turns it off. An image is right when its top class at
    the threshold is its label, or when no class reaches the threshold and its label is none of the classes.
    """

    def __init__(
        self,
        wb: Workbench,
        images: str | Path | Sequence[str | Path],
        classifier_ids: str | Sequence[str] | None = None,
        threshold: float = THRESHOLD,
        top: int = TOP_CLASSES,
        batch_size: int = RESULTS_BATCH,
        columns: int = GALLERY_COLUMNS,
        labels: Mapping[str, str] | bool | None = None,
    ) -> None:
        self.wb = wb
        folder = Path(images) if isinstance(images, (str, Path)) and Path(images).is_dir() else None
        if folder is not None:
            found = list(folder_images(folder))
            self.paths, self.names = [p for _, p in found], {p: name for name, p in found}
        else:
            self.paths = image_paths(images)
            self.names = {p: p.as_posix() for p in self.paths}
        self.classifier_ids = [classifier_ids] if isinstance(classifier_ids, str) else classifier_ids
        self.top = top
        self.threshold = widgets.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01, description="threshold")
        self.summary = widgets.HTML()
        self.errors: dict[Path, str] = {}
        self.scores = self._classify(batch_size)
        self.labels = self._labels(labels, folder)
        self.truth = self._truth()  # classifier id -> image path -> its true class, or `(none)`
        self.captions = [widgets.HTML() for _ in self.paths]
        tiles = [
            widgets.VBox(
                [widgets.Image(value=thumbnail(p.read_bytes()), format="jpeg", width=THUMBNAIL_PX), caption],
                layout=widgets.Layout(width=f"{TILE_PX}px"),
            )
            for p, caption in zip(self.paths, self.captions, strict=True)
        ]
        self.grid = widgets.GridBox(
            tiles, layout=widgets.Layout(grid_template_columns=f"repeat({columns}, {TILE_PX}px)")
        )
        self.threshold.observe(lambda _: self.refresh(), names="value")
        super().__init__([widgets.HBox([self.threshold, self.summary]), self.grid])
        self.add_class("workbench-results-grid")
        self.refresh()

    def _classify(self, batch_size: int) -> pd.DataFrame:
        """Scores every image, `batch_size` per classify call; unnamed bytes come back as image_<position>."""
        frames = []
        for start in range(0, len(self.paths), batch_size):
            batch = self.paths[start : start + batch_size]
            answer = self.wb.classify(
                [p.read_bytes() for p in batch], classifier_ids=self.classifier_ids, threshold=0.0
            )
            by_name = {image.get("image"): image for image in answer["images"]}
            for position, path in enumerate(batch, start=1):
                image = by_name.get(f"image_{position}", {"error": {"description": "not classified"}})
                if "error" in image:
                    self.errors[path] = image["error"].get("description", "error")
                    continue
                frame = score_rows({"images": [image]})
                frames.append(frame.assign(image=str(path)))
        columns = ["image", "classifier_id", "class", "score", "type_hierarchy"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def _labels(self, labels: Mapping[str, str] | bool | None, folder: Path | None) -> dict[str, str] | None:
        """{name: label} from caller, the folder's LABELS.txt, or {}: labels from folder names; None: unlabelled."""
        if labels is False:
            return None
        if isinstance(labels, Mapping):
            return dict(labels)
        if folder is not None and (folder / LABELS_FILE).is_file():
            return parse_labels((folder / LABELS_FILE).read_text(encoding="utf-8", errors="replace"))
        in_sub_folders = folder is not None and any("/" in name for name in self.names.values())
        return {} if labels is True or in_sub_folders else None

    def _truth(self) -> dict[str, dict[Path, str]]:
        if self.labels is None:
            return {}
        custom = [cid for cid in dict.fromkeys(self.scores["classifier_id"]) if cid != GENERAL_CLASSIFIER_ID]
        truth = {}
        for cid in custom:
            classes = [c["class"] for c in self.wb.get_classifier(cid)["classes"]]
            truth[cid] = {p: label_from_name(self.names[p], classes, self.labels) for p in self.paths}
        return truth

    @property
    def labelled(self) -> bool:
        """Whether the images have ground truth (so each result is marked right or wrong)."""
        return bool(self.truth)

    def top_classes(self, path: str | Path) -> pd.DataFrame:
        """An image's best `top` classes per classifier (whatever the threshold), highest first."""
        mine = self.scores[self.scores["image"] == str(path)]
        return (
            mine.sort_values("score", ascending=False, kind="stable")
            .groupby("classifier_id", sort=False)
            .head(self.top)
        )

    def predictions(self) -> pd.DataFrame:
        """One row per image and classifier, in image order: its best class and score, and whether it
        reaches the threshold; for labelled images also `truth` (the true class, or `(none)`) and
        `correct` (None for `default`)."""
        order = {str(p): i for i, p in enumerate(self.paths)}
        best = (
            self.scores.sort_values("score", ascending=False, kind="stable")
            .groupby(["image", "classifier_id"], sort=False)
            .head(1)
            .sort_values("image", key=lambda images: images.map(order), kind="stable")
        )
        best = best.assign(reached=best["score"] >= self.threshold.value)
        columns = ["image", "classifier_id", "class", "score", "reached"]
        if self.labelled:
            truth = [
                self.truth[cid][Path(image)] if cid in self.truth else None
                for image, cid in zip(best["image"], best["classifier_id"], strict=True)
            ]
            correct = [
                None if expected is None else self._right(cid, name, score, expected)
                for cid, name, score, expected in zip(
                    best["classifier_id"], best["class"], best["score"], truth, strict=True
                )
            ]
            best = best.assign(truth=truth, correct=correct)
            columns += ["truth", "correct"]
        return best[columns].reset_index(drop=True)

    def _right(self, classifier_id: str, top_class: str, top_score: float, truth: str) -> bool:
        """The top class at the threshold is the truth, or nothing reached the threshold and the truth is none."""
        return top_class == truth if top_score >= self.threshold.value else truth not in self._classes(classifier_id)

    def _classes(self, classifier_id: str) -> set[str]:
        return set(self.scores.loc[self.scores["classifier_id"] == classifier_id, "class"])

    def caption(self, path: Path) -> str:
        """File name, then per classifier the classes at the threshold with scores, or the best one marked below it;
        a labelled image says whether the top class is right, or what it is."""
        lines = [_file_name_html(path.name)]
        if path in self.errors:
            return "<small>" + lines[0] + f"<span style='color:#b00'>{html.escape(self.errors[path])}</span></small>"
        t = self.threshold.value
        for cid, classes in self.top_classes(path).groupby("classifier_id", sort=False):
            reached = classes[classes["score"] >= t]
            shown = reached if len(reached) else classes.head(1)
            text = html.escape(
                ", ".join(top_score_text(c, s, t) for c, s in zip(shown["class"], shown["score"], strict=True))
            )
            prefix = html.escape(f"{cid}: ") if len(self.classifier_ids or []) != 1 else ""
            line = prefix + (f"<b>{text}</b>" if len(reached) else text)
            if cid in self.truth:
                truth = self.truth[cid][path]
                right = self._right(str(cid), classes["class"].iloc[0], float(classes["score"].iloc[0]), truth)
                line += (
                    " <span style='color:#070'>&#10003; right</span>"
                    if right
                    else f" <span style='color:#b00'>&#10007; true: {html.escape(truth)}</span>"
                )
            lines.append(line)
        return "<small>" + lines[0] + "<br>".join(lines[1:]) + "</small>"

    def refresh(self) -> None:
        """Rewrites the captions for the slider's threshold (no classify call)."""
        for path, caption in zip(self.paths, self.captions, strict=True):
            caption.value = self.caption(path)
        called = self.scores[self.scores["score"] >= self.threshold.value]["image"].nunique()
        text = f"{len(self.paths)} images, {called} with a class at threshold {self.threshold.value:.2f}"
        if self.labelled:
            marks = self.predictions()["correct"].dropna()
            text += f"; {int(marks.sum())} of {len(marks)} right"
        self.summary.value = text

    def interpretation(self, classifier_id: str | None = None) -> Interpretation:
        """The labelled images' `Interpretation` for one custom classifier (the only one by default): the confusion
        matrix, most confused pairs and highest losses of these images, as for a version's training images."""
        if not self.labelled:
            raise ValueError(
                "these images have no labels: give labels= or a folder with LABELS.txt or class sub-folders"
            )
        cid = classifier_id if classifier_id is not None else next(iter(self.truth))
        if cid not in self.truth:
            raise ValueError(f"{cid!r} is not a custom classifier of this grid: {sorted(self.truth)}")
        classes = [c["class"] for c in self.wb.get_classifier(cid)["classes"]]
        mine = self.scores[self.scores["classifier_id"] == cid]
        table = mine.pivot_table(index="image", columns="class", values="score", aggfunc="max").reindex(columns=classes)
        scored = [p for p in self.paths if str(p) in table.index]
        scores = table.loc[[str(p) for p in scored]].fillna(0.0).to_numpy(dtype=float)
        return Interpretation(classes, scores, [self.truth[cid][p] for p in scored], [self.names[p] for p in scored])


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
            tiles = [
                widgets.VBox(
                    [
                        widgets.Image(
                            value=overlay_jpeg(e.image, e.heatmap, IMAGE_WIDTH_PX),
                            format="jpeg",
                            width=IMAGE_WIDTH_PX * 2 // 3,
                        ),
                        widgets.HTML(f"<small>{html.escape(e.class_name)} {e.score:.3f}</small>"),
                    ]
                )
                for e in found
            ]
            rows.append(widgets.VBox([widgets.HTML(f"<b>{html.escape(cid)}</b>"), widgets.HBox(tiles)]))
        super().__init__(rows)


class OverlayGallery(widgets.VBox):
    """The misclassified training images of a version (`review_items`), each with where its true class's head looked."""

    def __init__(
        self,
        wb: Workbench,
        classifier_id: str,
        version: int | None = None,
        threshold: float = THRESHOLD,
        max_images: int = MAX_GALLERY_IMAGES,
    ) -> None:
        oof = wb.out_of_fold(classifier_id, version=version)
        items = review_items(oof, threshold)
        self.items = items[items["kind"] == "misclassified"].head(max_images)
        tiles = [self._tile(wb, classifier_id, row, oof.classes) for row in self.items.itertuples()]
        grid = widgets.GridBox(
            tiles, layout=widgets.Layout(grid_template_columns=f"repeat({GALLERY_COLUMNS}, {THUMBNAIL_PX + 16}px)")
        )
        if tiles:
            self.note = widgets.HTML(
                f"version {oof.version}: {len(self.items)} misclassified, with where their class looked"
            )
            super().__init__([self.note, grid])
        else:  # a caption over nothing reads like a drawing that failed
            self.note = widgets.HTML(
                f"<i>version {oof.version}: no training image is misclassified at threshold "
                f"{threshold:.2f}, so there is no map to show</i>"
            )
            super().__init__([self.note])

    @staticmethod
    def _tile(wb: Workbench, classifier_id: str, row, classes: Sequence[str]) -> widgets.VBox:
        """A negative example shows where the class it was mistaken for looked; a positive, its own class."""
        data = wb.example_image(classifier_id, row.sha256)
        [looked] = wb.explain(data, classifier_id, class_name=row.label if row.label in classes else None, top=1)
        caption = (
            f"<small>{html.escape(Path(row.source).name)}<br>true: {html.escape(row.label)}"
            f"<br>map: {html.escape(looked.class_name)} {looked.score:.2f}</small>"
        )
        picture = widgets.Image(value=overlay_jpeg(looked.image, looked.heatmap), format="jpeg", width=THUMBNAIL_PX)
        return widgets.VBox([picture, widgets.HTML(caption)])


__all__ = [
    "ClassifyWidget",
    "Debounced",
    "ExamplesWidget",
    "ExplainView",
    "Gallery",
    "OverlayGallery",
    "ResultsGrid",
    "ServingPicker",
    "StatusWidget",
    "ThresholdPlots",
    "score_rows",
]
