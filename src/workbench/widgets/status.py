"""A classifier's live status and training progress, with the picker of the version that serves."""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets

from .. import ClassifierEvent
from ..core.errors import WorkbenchError
from ..service.workbench import Workbench
from .display import error_html

SETTLED_STAGES = ("ready", "failed", "deleted", "promoted")
LATEST = "latest"  # the serving picker's "no pin" entry (`Workbench.promote(cid, "latest")`)
LATEST_LABEL = "newest (each training serves)"


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
            self.label.value = error_html(exc)

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
            self.note.value = error_html(exc)
            return
        self.refresh()
