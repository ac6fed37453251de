"""Gallery: the misclassified and borderline training images of a version, each removable or relabelled."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets

from .. import plots
from ..analysis.review import BORDERLINE_MARGIN, review_items
from ..core.errors import InvalidRequest, WorkbenchError
from ..core.vocabulary import THRESHOLD
from ..service.workbench import Workbench
from .display import (
    GALLERY_COLUMNS,
    MAX_GALLERY_IMAGES,
    THUMBNAIL_PX,
    TILE_PX,
    error_html,
    file_name_html,
    thumbnail,
    top_score_text,
)


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
            self.message.value = error_html(exc)
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
            f"<small>{file_name_html(Path(row.source).name)}true: {html.escape(row.label)}"
            f"<br>top: {html.escape(top_score_text(row.top_class, row.top_score, self.threshold.value))}</small>"
        )

    def _tile(self, row) -> ExampleTile:
        picture = widgets.Image(
            value=thumbnail(self.wb.example_image(self.classifier_id, row.sha256)), format="jpeg", width=THUMBNAIL_PX
        )
        return ExampleTile(self, row, picture, self.caption(row))
