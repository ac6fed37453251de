"""HTML of a version's numbers at a threshold: per-class metrics, confusion matrix, most confused pairs,
highest losses, calibration (plain strings: fast enough to rewrite on every slider move)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import OutOfFold
from ..analysis.review import calibration_summary


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
