"""Pictures of how good a classifier version is, from its out-of-fold scores: matplotlib Figures, no I/O.

One implementation for the MLflow artifacts and the notebooks. The quality plots take scores
(images x classes), labels (one per image, `NEGATIVE_LABEL` for negatives) and the class list,
and return a `matplotlib.figure.Figure` (built without pyplot, so it is safe off the main thread).
The overlays draw `Workbench.explain` results: where each class's score looked.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from ..core.vocabulary import THRESHOLD
from .training import NEGATIVE_LABEL, predicted_labels

PANEL_INCHES = 3.6  # width and height of one per-class panel
MAX_PANEL_COLUMNS = 4
HISTOGRAM_BINS = 20
CURVE_POINTS = 101  # thresholds 0.00, 0.01, ..., 1.00
NEGATIVE_NAME = "(negative)"  # how negative examples are named on the axes
NO_CLASS_NAME = "(no class)"  # the prediction when no score reaches the threshold
OUTSIDE_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}  # an axes legend beside it
THRESHOLD_GID = "threshold"  # gid of a vertical line drawn at the threshold (`move_threshold` moves it)
POINT_GID = "threshold-point/"  # gid prefix of a panel's point at the threshold, followed by the class name
THRESHOLD_LABELS = ("threshold ", "at threshold ")  # legend entries that name the threshold's value
LIVE_DPI = 80
LIVE_JPEG_QUALITY = 90
F1_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _figure_legend(figure: Figure, axes: list) -> None:
    """One legend for all panels, below them (outside every axes, so it never covers a curve or a bar)."""
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes), key=lambda h: len(h[1]), default=([], []))
    if labels:
        figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")


def _panels(count: int, title: str, max_columns: int = MAX_PANEL_COLUMNS) -> tuple[Figure, list]:
    """A figure with one square panel per class, in rows of at most `max_columns`."""
    columns = max(1, min(max_columns, count))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows + 0.6), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    axes = list(grid.flat)
    for extra in axes[count:]:
        extra.set_visible(False)
    figure.suptitle(title)
    return figure, axes[:count]


def score_histograms(
    scores: np.ndarray, labels: Sequence[str], classes: Sequence[str], threshold: float = THRESHOLD
) -> Figure:
    """Per class: how its positives and all other images score, with the threshold drawn."""
    names: np.ndarray = np.asarray(labels)
    figure, axes = _panels(len(classes), "Out-of-fold scores: positives vs the rest")
    bins = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    for i, (name, ax) in enumerate(zip(classes, axes, strict=True)):
        positive = names == name
        for mask, color, label in (
            (~positive, "tab:gray", "every other image"),
            (positive, "tab:blue", "the class's images"),
        ):
            counts, _ = np.histogram(scores[mask, i], bins=bins)
            ax.stairs(counts, bins, fill=True, alpha=0.6, color=color, label=label)
        ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:g}", gid=THRESHOLD_GID)
        ax.set_yscale("symlog", linthresh=1)
        ax.set(title=name, xlabel="score", ylabel="images", xlim=(0, 1))
        ax.set_title(f"{positive.sum()} vs {(~positive).sum()}", loc="right", fontsize="small")
    _figure_legend(figure, axes)
    return figure


def threshold_table(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and false-positive rate of `score >= t` for each threshold t (one class)."""
    guess = scores[None, :] >= thresholds[:, None]
    true_pos = (guess & truth).sum(axis=1)
    false_pos = (guess & ~truth).sum(axis=1)
    called = guess.sum(axis=1)
    return {
        "precision": np.where(called > 0, true_pos / np.maximum(called, 1), np.nan),
        "recall": true_pos / max(int(truth.sum()), 1),
        "false_positive_rate": false_pos / max(int((~truth).sum()), 1),
    }


def threshold_curves(
    scores: np.ndarray, labels: Sequence[str], classes: Sequence[str], threshold: float = THRESHOLD
) -> Figure:
    """Per class: precision, recall and false-positive rate as the threshold moves from 0 to 1."""
    names: np.ndarray = np.asarray(labels)
    thresholds = np.linspace(0.0, 1.0, CURVE_POINTS)
    figure, axes = _panels(len(classes), "Precision / recall / false-positive rate vs threshold")
    for i, (name, ax) in enumerate(zip(classes, axes, strict=True)):
        table = threshold_table(scores[:, i], names == name, thresholds)
        ax.plot(thresholds, table["precision"], label="precision", color="tab:blue")
        ax.plot(thresholds, table["recall"], label="recall", color="tab:green")
        ax.plot(thresholds, table["false_positive_rate"], label="false-positive rate", color="tab:orange")
        ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:g}", gid=THRESHOLD_GID)
        ax.set(title=name, xlabel="threshold", ylim=(-0.02, 1.02), xlim=(0, 1))
    _figure_legend(figure, axes)
    return figure


def reliability_diagram(scores: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> Figure:
    """How often a score was right: every (image, class) pair's held-out score in bins, against the diagonal.

    Bars on the diagonal mean a score of 0.8 is right 8 times in 10; the title gives ECE and Brier score.
    """
    from .calibration import brier_score, expected_calibration_error, one_vs_rest, reliability

    truth = one_vs_rest(list(labels), list(classes))
    bins = reliability(scores, truth)
    figure = Figure(figsize=(2 * PANEL_INCHES, PANEL_INCHES + 0.6), layout="constrained")
    right, counts = figure.subplots(1, 2)
    filled = [b for b in bins if b["count"]]
    centres = [(b["low"] + b["high"]) / 2 for b in filled]
    width = bins[0]["high"] - bins[0]["low"]
    right.bar(
        centres, [b["fraction_right"] for b in filled], width=width * 0.9, color="tab:blue", label="how often right"
    )
    right.plot(
        [b["mean_score"] for b in filled],
        [b["fraction_right"] for b in filled],
        "o",
        color="tab:red",
        label="mean score in the bin",
    )
    right.plot([0, 1], [0, 1], linestyle="--", color="tab:gray", label="perfect calibration")
    right.set(xlabel="score", ylabel="fraction of pairs right", xlim=(0, 1), ylim=(0, 1.02))
    right.legend(fontsize="small", loc="upper left")
    counts.bar(centres, [b["count"] for b in filled], width=width * 0.9, color="tab:gray")
    counts.set(xlabel="score", ylabel="(image, class) pairs", yscale="log", xlim=(0, 1))
    figure.suptitle(
        f"Reliability (out-of-fold): ECE {expected_calibration_error(scores, truth):.3f}, "
        f"Brier {brier_score(scores, truth):.4f}"
    )
    return figure


def pr_curves(
    scores: np.ndarray, labels: Sequence[str], classes: Sequence[str], threshold: float = THRESHOLD
) -> Figure:
    """Per class: the precision-recall curve over every threshold, its average precision (AP) in the title,
    and the point the chosen threshold gives."""
    from sklearn.metrics import average_precision_score, precision_recall_curve  # scikit-learn only when drawn

    names: np.ndarray = np.asarray(labels)
    figure, axes = _panels(len(classes), "Precision-recall curves (out-of-fold)")
    for i, (name, ax) in enumerate(zip(classes, axes, strict=True)):
        truth = names == name
        ax.set(xlabel="recall", ylabel="precision", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        if not truth.any():
            ax.set_title(f"{name}: no positives")
            continue
        precision, recall, _ = precision_recall_curve(truth, scores[:, i])
        ax.step(recall, precision, where="post", color="tab:blue", label="precision-recall")
        at = threshold_table(scores[:, i], truth, np.array([threshold]))
        ax.plot(
            at["recall"],
            at["precision"],
            "o",
            color="tab:red",
            label=f"at threshold {threshold:g}",
            gid=POINT_GID + name,
        )
        ax.set_title(f"{name}: AP {average_precision_score(truth, scores[:, i]):.3f}")
    _figure_legend(figure, axes)
    return figure


def move_threshold(figure: Figure, threshold: float, points: Mapping[str, tuple[float, float]] | None = None) -> None:
    """Moves a figure's threshold artists to a new threshold: its vertical lines (gid `THRESHOLD_GID`) and each
    class's point (`points`: class -> (x, y), e.g. (recall, precision); gid `POINT_GID` + class)."""
    lines, marks = _threshold_artists(figure)
    _move(lines, marks, threshold, points)


def _threshold_artists(figure: Figure) -> tuple[list[Line2D], dict[str, Line2D]]:
    lines = [line for line in figure.findobj(Line2D) if line.get_gid() == THRESHOLD_GID]
    marks = {
        gid[len(POINT_GID) :]: line
        for line in figure.findobj(Line2D)
        if (gid := line.get_gid() or "").startswith(POINT_GID)
    }
    return lines, marks


def _move(
    lines: list[Line2D], marks: dict[str, Line2D], threshold: float, points: Mapping[str, tuple[float, float]] | None
) -> None:
    for line in lines:
        line.set_xdata([threshold, threshold])
    for name, (x, y) in (points or {}).items():
        if name in marks:
            marks[name].set_data([x], [y])


class LiveFigure:
    """A figure drawn once, whose threshold artists alone are redrawn for each new threshold (blitting).

    The first draw lays the figure out and keeps it as a background without the artists that move
    (threshold lines, threshold points); `image(threshold)` pastes the background back, draws only
    those, and encodes the canvas. A move costs a few lines and an encoding instead of laying out and
    drawing every panel again (about 300 ms a figure on an idle core). The encoding is JPEG at quality
    90 without chroma subsampling: lines and text stay sharp, and it takes a third of the time of a PNG
    (12 against 37 ms for 1152 x 336 pixels on a busy core). Legend entries that named the threshold's
    value say "threshold" / "at the threshold": the value is beside the slider.
    """

    format = "jpeg"  # of `image()`'s bytes, as ipywidgets.Image names it

    def __init__(self, figure: Figure, dpi: float = LIVE_DPI) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.figure = figure
        figure.set_dpi(dpi)
        self.canvas = FigureCanvasAgg(figure)
        self.lines, self.marks = _threshold_artists(figure)
        for legend in _legends(figure):  # static from now on: drawn once, into the background
            for text in legend.get_texts():
                if text.get_text().startswith("threshold "):
                    text.set_text("threshold")
                elif text.get_text().startswith("at threshold "):
                    text.set_text("at the threshold")
        for artist in [*self.lines, *self.marks.values()]:
            artist.set_animated(True)
        self.canvas.draw()
        figure.set_layout_engine("none")  # keep the first layout: the background must stay where it was drawn
        self.background = self.canvas.copy_from_bbox(figure.bbox)

    def image(self, threshold: float | None = None, points: Mapping[str, tuple[float, float]] | None = None) -> bytes:
        """The figure as JPEG bytes, its threshold artists first moved to `threshold` (when given) and `points`."""
        if threshold is not None:
            _move(self.lines, self.marks, threshold, points)
        self.canvas.restore_region(self.background)
        for artist in [*self.lines, *self.marks.values()]:
            self.figure.draw_artist(artist)
        size = self.canvas.get_width_height()
        picture = Image.frombuffer("RGB", size, self.canvas.buffer_rgba(), "raw", "RGBX", 0, 1)  # alpha dropped
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=LIVE_JPEG_QUALITY, subsampling=0)
        return buffer.getvalue()


def _legends(figure: Figure) -> list[Legend]:
    return [*figure.legends, *[legend for ax in figure.axes if (legend := ax.get_legend()) is not None]]


def confusion_counts(
    scores: np.ndarray, labels: Sequence[str], classes: Sequence[str], threshold: float = THRESHOLD
) -> tuple[np.ndarray, list[str], list[str]]:
    """Counts of (true class, top class at the threshold); negatives and "no class" get a row/column."""
    rows = list(classes) + ([NEGATIVE_LABEL] if NEGATIVE_LABEL in set(labels) else [])
    columns = [*classes, NEGATIVE_LABEL]
    counts = np.zeros((len(rows), len(columns)), dtype=int)
    for truth, guess in zip(labels, predicted_labels(scores, list(classes), threshold), strict=True):
        counts[rows.index(truth), columns.index(guess)] += 1
    row_names = [NEGATIVE_NAME if r == NEGATIVE_LABEL else r for r in rows]
    column_names = [NO_CLASS_NAME if c == NEGATIVE_LABEL else c for c in columns]
    return counts, row_names, column_names


def confusion_matrix(
    scores: np.ndarray, labels: Sequence[str], classes: Sequence[str], threshold: float = THRESHOLD
) -> Figure:
    """True class against the top-scoring class at the threshold (out-of-fold), counts in each cell."""
    counts, row_names, column_names = confusion_counts(scores, labels, classes, threshold)
    side = 1.2 + 0.75 * max(len(row_names), len(column_names))
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(len(column_names)), column_names, rotation=45, ha="right")
    ax.set_yticks(range(len(row_names)), row_names)
    ax.set(xlabel=f"top class at threshold {threshold:g}", ylabel="true class", title="Confusion matrix (out-of-fold)")
    darkest = counts.max() or 1
    for (r, c), value in np.ndenumerate(counts):
        ax.text(c, r, str(value), ha="center", va="center", color="white" if value > darkest / 2 else "black")
    return figure


def version_comparison(versions: Sequence[int], metrics: Sequence[dict[str, float]]) -> Figure:
    """Versions side by side: error rates (1 - accuracy, 1 - macro F1) as labelled bars, then F1 per class
    (a class absent from a version is a gap). Error rates and a zoomed F1 axis keep 0.994 vs 1.0 visible.

    `metrics` holds one flat dict per version, keyed as MLflow logs them (`accuracy`, `f1/<class>`, ...).
    """
    labels = [f"v{v}" for v in versions]
    classes = list(dict.fromkeys(k.split("/", 1)[1] for m in metrics for k in m if k.startswith("f1/")))
    figure = Figure(figsize=(2 * PANEL_INCHES + 3.0, PANEL_INCHES + 0.6), layout="constrained")
    overall, per_class = figure.subplots(1, 2)
    width = 0.8 / 2
    x = np.arange(len(labels))
    highest = 0.0
    for offset, (key, name) in enumerate((("accuracy", "error rate (1 - accuracy)"), ("macro_f1", "1 - macro F1"))):
        errors = [1.0 - m.get(key, np.nan) for m in metrics]
        bars = overall.bar(x + (offset - 0.5) * width, errors, width, label=name)
        overall.bar_label(bars, fmt="%.3f", fontsize="small")
        highest = max([highest, *[e for e in errors if np.isfinite(e)]])
    overall.set_xticks(x, labels)
    overall.set(title="Cross-validated errors (lower is better)", ylim=(0, max(highest * 1.25, 0.01)), xlabel="version")
    overall.legend(fontsize="small", **OUTSIDE_RIGHT)
    values = []
    for k, name in enumerate(classes):
        line = [m.get(f"f1/{name}", np.nan) for m in metrics]
        values += [v for v in line if np.isfinite(v)]
        # classes often share a value (F1 1.0 in every version): each later line is thinner, with a smaller
        # marker of another shape, so one drawn over another leaves the first showing round it
        width = 1.2 + 3.0 * (len(classes) - 1 - k) / max(len(classes) - 1, 1)
        per_class.plot(
            x,
            line,
            marker=F1_MARKERS[k % len(F1_MARKERS)],
            linewidth=width,
            markersize=4 + 1.6 * width,
            label=name,
            zorder=2 + k / max(len(classes), 1),
        )
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(0.01, (high - low) * 0.1)
    per_class.set_xticks(x, labels)
    per_class.set(title="F1 per class", ylim=(max(0.0, low - pad), min(1.0, high) + pad), xlabel="version")
    per_class.legend(fontsize="small", **OUTSIDE_RIGHT)
    figure.suptitle("Version comparison")
    return figure


# where it looked --------------------------------------------------------------------------------
OVERLAY_ALPHA = 0.5  # weight of the heatmap's colour where the map is 1 (it fades out towards 0)
OVERLAY_CMAP = "inferno"


def overlay_image(image: Image.Image, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """The image with a 0..1 heatmap blended over it (resized to the image): bright where the map is high."""
    from matplotlib import colormaps

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.shape != rgb.shape[:2]:
        heat = np.asarray(Image.fromarray(heat, mode="F").resize(image.size, Image.Resampling.BILINEAR))
    heat = np.clip(heat, 0.0, 1.0)
    colour = colormaps[OVERLAY_CMAP](heat)[..., :3]
    weight = alpha * heat[..., None] + (1 - alpha) * 0.35  # the image dims a little everywhere, the map shows its peaks
    blended = rgb * (1 - weight) + colour * weight
    return Image.fromarray((np.clip(blended, 0, 1) * 255).astype(np.uint8))


def overlays(explanations: Sequence, columns: int = MAX_PANEL_COLUMNS, title: str = "Where it looked") -> Figure:
    """`Workbench.explain` results side by side: each class's heatmap over its image, with its score."""
    figure, axes = _panels(len(explanations), title, columns)
    for explanation, ax in zip(explanations, axes, strict=True):
        ax.imshow(overlay_image(explanation.image, explanation.heatmap))
        left, top, right, bottom = explanation.box
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, linestyle=":", color="white"))
        ax.set_title(f"{explanation.class_name}\n{explanation.classifier_id} {explanation.score:.3f}", fontsize="small")
        ax.set_axis_off()
    return figure


def overlay(explanation) -> Figure:
    """One `Workbench.explain` result: the class's heatmap over its image."""
    return overlays([explanation], title=explanation.class_name)


def overlay_gallery(tiles: Sequence[tuple[Image.Image, np.ndarray, str]], title: str) -> Figure:
    """A grid of (image, heatmap, caption) tiles: training images per class with where their class looked."""
    columns = max(1, min(MAX_PANEL_COLUMNS + 2, len(tiles)))
    rows = max(1, math.ceil(len(tiles) / columns))
    figure = Figure(figsize=(2.2 * columns, 2.4 * rows + 0.5), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for ax in axes:
        ax.set_axis_off()
    for (image, heatmap, caption), ax in zip(tiles, axes, strict=False):
        ax.imshow(overlay_image(image, heatmap))
        ax.set_title(caption, fontsize="x-small")
    figure.suptitle(title)
    return figure
