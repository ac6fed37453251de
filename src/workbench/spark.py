"""Spark batch classification: a DataFrame of image files in, one row of Watson answers per image out.

`classify(df, classifier_ids=[...])` maps the DataFrame's Arrow batches through
`Workbench.classify_iter` in each Python worker (`mapInArrow`). The Workbench, and with it the
backbone, is built once per Python worker and kept in a module-level cache keyed by home and
owner: Spark reuses its Python workers, so the backbone loads once per worker, not per row or
batch. Every executor must read the same workbench home (one machine, or a shared folder); on a
cluster without one, `mlflow.pyfunc.spark_udf` of `models:/<id>@serving` ships the model instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from . import Workbench
from .results_files import ROW_DDL, arrow_schema, result_row
from .service import default_home
from .vocabulary import OWNER_ME

if TYPE_CHECKING:
    import pyarrow
    from pyspark.sql import DataFrame

_WORKBENCHES: dict[tuple[str, str], Workbench] = {}  # per Python worker: (home, owner) -> its Workbench
_LOCK = threading.Lock()


def worker_workbench(home: str, owner: str = OWNER_ME) -> Workbench:
    """This process's Workbench for `home`: built on first use, then reused by every batch (read-only: no training)."""
    key = (home, owner)
    with _LOCK:
        if key not in _WORKBENCHES:
            _WORKBENCHES[key] = Workbench(home, owner=owner, train=False, resume=False, tracking_uri=False)
        return _WORKBENCHES[key]


def _scorer(home: str, owner: str, ids: list[str] | None, threshold: float | None, path_col: str, content_col: str):
    """The function Spark runs on each partition: Arrow batches of files in, Arrow batches of answers out."""

    def score(batches: Iterator[pyarrow.RecordBatch]) -> Iterator[pyarrow.RecordBatch]:
        import pyarrow as pa

        wb = worker_workbench(home, owner)
        schema = arrow_schema()
        for batch in batches:
            paths = batch.column(path_col).to_pylist()
            contents = batch.column(content_col).to_pylist()
            pairs = [(str(path), content or b"") for path, content in zip(paths, contents, strict=True)]
            rows = [result_row(answer) for answer in wb.classify_iter(pairs, classifier_ids=ids, threshold=threshold)]
            yield pa.RecordBatch.from_pylist(rows, schema=schema)

    return score


def classify(
    df: DataFrame,
    classifier_ids: str | Iterable[str] | None = None,
    threshold: float | None = None,
    *,
    home: str | os.PathLike | None = None,
    owner: str = OWNER_ME,
    path_col: str = "path",
    content_col: str = "content",
) -> DataFrame:
    """One row per image of `df` (`path` and binary `content`, as `spark.read.format("binaryFile")` gives):
    `path`, `sha256`, `classifiers` (Watson's classes and scores per classifier) and `error` (null, or why
    the image could not be read).

    The classifier ids and the threshold are checked here, on the driver, before Spark runs anything.
    """
    folder = str(Path(home if home is not None else default_home()).resolve())
    ids = None if classifier_ids is None else ([classifier_ids] if isinstance(classifier_ids, str) else list(classifier_ids))
    for _ in worker_workbench(folder, owner).classify_iter((), classifier_ids=ids, threshold=threshold):
        pass  # no images: only the checks run (unknown classifier, bad threshold)
    score = _scorer(folder, owner, ids, threshold, path_col, content_col)
    return df.select(path_col, content_col).mapInArrow(score, ROW_DDL)
