"""Classify one image against chosen classifiers; a threshold slider re-filters the scores live."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as widgets
import pandas as pd

from ..core.errors import WorkbenchError
from ..core.vocabulary import FOOD_CLASSIFIER_ID, GENERAL_CLASSIFIER_ID, THRESHOLD
from ..service.workbench import Workbench
from .display import IMAGE_WIDTH_PX, error_html, thumbnail

MAX_TABLE_ROWS = 30  # classify results shown at once; the rest are counted


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
            self.message.value, self.scores = error_html(exc), score_rows({})
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
