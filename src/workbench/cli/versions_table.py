"""`versions`: every trained version's metrics as a table that fits a terminal, or as JSON records (`--json`).

pandas is imported inside the functions: a short command that never prints versions loads none of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

    from ..service.workbench import Workbench

# columns of `versions` that count things: printed as integers, although MLflow keeps every metric as a float
INTEGER_COLUMNS = (
    "version",
    "registered_version",
    "parent_version",
    "images",
    "negatives",
    "images_embedded",
    "images_cached",
    "classes",
)
TABLE_WIDTH = 100  # `versions` prints a table this many characters wide at most (a terminal, a pasted log)
MIN_CELL = 12  # the narrowest version column; fewer versions are shown rather than narrower ones
MAX_LABEL = 30  # metric names (per-class ones carry the class name) are cut to this
TABLE_LEFT_OUT = ("run_id",)  # 32 hex characters; in `--json` and the MLflow UI


def versions_frame(frame: pandas.DataFrame) -> pandas.DataFrame:
    """`compare_versions`'s frame with its count columns as (nullable) integers, sorted by version."""
    import pandas as pd

    frame = frame.copy()
    for column in INTEGER_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).round().astype("Int64")
    return frame.sort_values("version").reset_index(drop=True) if "version" in frame else frame


def _cell(value: object) -> str:
    """One table cell: integers as integers, floats to 3 decimals, lists joined, missing as blank."""
    import pandas as pd

    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if pd.isna(value):
        return ""
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _clip(text: str, width: int) -> str:
    """The text, cut to `width` characters with an ellipsis at the end when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def versions_table(frame: pandas.DataFrame, width: int = TABLE_WIDTH) -> tuple[str, int]:
    """The versions as an aligned text table, one row per metric, one column per version; and how many it shows.

    It fits `width` columns: the newest versions that fit (at least MIN_CELL characters each), the
    metric names cut to MAX_LABEL and longer cells (class lists, what a version added) cut with an
    ellipsis; `run_id` is left out (`--json` has everything). Returns the table and the versions shown.
    """
    frame = versions_frame(frame).drop(columns=[c for c in TABLE_LEFT_OUT if c in frame])
    numbers = [f"v{n}" for n in frame["version"]] if "version" in frame else [f"v{i + 1}" for i in range(len(frame))]
    labels = [_clip(str(c), MAX_LABEL) for c in frame.columns if c != "version"]
    label_width = max(map(len, labels), default=0)
    shown = max(1, min(len(numbers), (width - label_width) // (MIN_CELL + 2)))
    rows = frame.tail(shown)
    cell_width = (width - label_width) // shown - 2
    columns = [[_clip(_cell(v), cell_width) for v in rows[c].astype(object)] for c in frame.columns if c != "version"]
    widths = [max([len(h), *(len(column[i]) for column in columns)]) for i, h in enumerate(numbers[-shown:])]
    lines = [" " * label_width + "".join(f"  {h:>{w}}" for h, w in zip(numbers[-shown:], widths, strict=True))]
    lines += [
        f"{label:<{label_width}}" + "".join(f"  {c:>{w}}" for c, w in zip(column, widths, strict=True))
        for label, column in zip(labels, columns, strict=True)
    ]
    return "\n".join(line.rstrip() for line in lines), shown


def versions(wb: Workbench, args: argparse.Namespace) -> object:
    """`versions`: each version's metrics as a table (or JSON records with --json)."""
    frame = wb.compare_versions(args.classifier_id)
    if frame.empty:
        print(f"workbench: classifier {args.classifier_id!r} has no trained version yet", file=sys.stderr)
        return [] if args.json else None
    if args.json:
        return json.loads(versions_frame(frame).to_json(orient="records"))
    table, shown = versions_table(frame)
    print(table)
    if shown < len(frame):
        print(
            f"workbench: the newest {shown} of {len(frame)} versions fit {TABLE_WIDTH} columns; --json has every one",
            file=sys.stderr,
        )
    return None
