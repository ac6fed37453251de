"""The form that creates or updates a classifier from uploaded zips or from sets on the kernel's disk."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path

import ipywidgets as widgets

from .. import folder_sets, set_name
from ..core.errors import InvalidExamples, LimitExceeded, WorkbenchError
from ..service.workbench import Workbench
from .display import error_html
from .status import StatusWidget

NO_NEGATIVES = "(none)"
NEW_CLASSIFIER = "(new classifier)"  # the target dropdown's "create" entry (None would show as a blank)
LAB_UPLOAD_ENV = "WORKBENCH_LAB_UPLOAD_BYTES"  # set by jupyter_server_config.py (`make lab`): its websocket limit
TORNADO_MESSAGE_BYTES = 10 * 1024 * 1024  # tornado's default websocket_max_message_size: Jupyter's, unless raised


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
            self.message.value = error_html(exc)
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
            self.message.value = error_html(exc)
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
