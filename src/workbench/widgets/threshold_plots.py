"""ThresholdPlots: a version's numbers, mistakes and threshold plots, redrawn together as the slider moves."""

from __future__ import annotations

import threading

import ipywidgets as widgets
import pandas as pd

from .. import Interpretation, OutOfFold, plots
from ..core.vocabulary import THRESHOLD
from .debounce import REDRAW_INTERVAL_S, Debounced
from .display import figure_png
from .threshold_tables import calibration_html, confusion_html, metrics_html, most_confused_html, top_losses_html


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
