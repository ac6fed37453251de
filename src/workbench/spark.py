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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from . import Workbench, named_images
from .cli.results_files import ROW_DDL, arrow_schema, result_row
from .core.limits import THREADS_ENV
from .core.vocabulary import OWNER_ME
from .service.settings import default_home

if TYPE_CHECKING:
    import pyarrow
    from pyspark.sql import DataFrame

_WORKBENCHES: dict[tuple[str, str], Workbench] = {}  # per Python worker: (home, owner) -> its Workbench
_LOCK = threading.Lock()
FILE_COL = "file"  # `image_files`' column: where each executor reads the image
FILES_DDL = f"path string, {FILE_COL} string"
CHUNK_ROWS = 64  # rows of an Arrow batch turned into Python objects and scored at once: memory flat in the partition


def worker_workbench(home: str, owner: str = OWNER_ME) -> Workbench:
    """This process's Workbench for `home`: built on first use, then reused by every batch.

    It reads the store and heads only (`read_only`: a read-only home works) and waits for ONNX Runtime
    before the first image, so no image is scored by torch while the model exports; if the export fails,
    the warning says why once and every row's `engine` says "torch".
    """
    key = (home, owner)
    with _LOCK:
        if key not in _WORKBENCHES:
            wb = Workbench(home, owner=owner, train=False, resume=False, tracking_uri=False, read_only=True)
            wb.backbone.prepare(wait=True)
            _WORKBENCHES[key] = wb
        return _WORKBENCHES[key]


def _limit_threads_to_task_cpus() -> None:
    """In a Spark task: ONNX Runtime and torch use `spark.task.cpus` threads, not every core of the host
    (several Python workers share an executor's cores). An explicit $WORKBENCH_THREADS is kept."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is not None and not os.environ.get(THREADS_ENV):
        os.environ[THREADS_ENV] = str(context.cpus())


def image_files(spark, folder: str | os.PathLike, partitions: int | None = None) -> DataFrame:
    """The images under `folder` (on the driver and every executor: one machine or a shared folder) as rows
    `path` and `file`, listed on the driver exactly as `classify-dir` walks a folder: the same files get rows
    (empty and oversized ones too, as error rows; Spark's `binaryFile` leaves empty files out), under
    the same `path` ("folder/relative/path"), symlinked sub-folders followed. Executors read each file."""
    rows = [(name, str(path.absolute())) for name, path in named_images(folder)]
    slices = partitions or spark.sparkContext.defaultParallelism
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, max(1, min(slices, len(rows)))), FILES_DDL)


def _scorer(home: str, owner: str, ids: list[str] | None, threshold: float | None, path_col: str, source_col: str):
    """The function Spark runs on each partition: Arrow batches of files in, Arrow batches of answers out.

    `source_col` is binary content (`binaryFile`) or `file`, a path the worker reads (`image_files`).
    """

    def score(batches: Iterator[pyarrow.RecordBatch]) -> Iterator[pyarrow.RecordBatch]:
        import pyarrow as pa

        _limit_threads_to_task_cpus()
        wb = worker_workbench(home, owner)
        schema = arrow_schema()
        for batch in batches:  # up to spark.sql.execution.arrow.maxRecordsPerBatch rows (10,000): a whole partition
            for start in range(0, batch.num_rows, CHUNK_ROWS):
                chunk = batch.slice(start, CHUNK_ROWS)  # a view: only these rows' bytes become Python objects
                paths = chunk.column(path_col).to_pylist()
                sources = chunk.column(source_col).to_pylist()
                pairs: list[tuple[str, bytes] | tuple[str, os.PathLike]] = [
                    (str(path), Path(source)) if source_col == FILE_COL else (str(path), source or b"")
                    for path, source in zip(paths, sources, strict=True)
                ]
                rows = [
                    result_row(answer, wb.backbone.engine)
                    for answer in wb.classify_iter(pairs, classifier_ids=ids, threshold=threshold)
                ]
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
    """One row per image of `df` (`path` and binary `content`, as `spark.read.format("binaryFile")` gives, or
    `path` and `file`, as `image_files` gives):
    `path`, `sha256`, `classifiers` (Watson's classes and scores per classifier), `error` (null, or why
    the image could not be read) and `engine` ("onnxruntime", or "torch" when the ONNX export failed).

    The classifier ids and the threshold are checked here, on the driver, before Spark runs anything.
    """
    folder = str(Path(home if home is not None else default_home()).resolve())
    ids = (
        None
        if classifier_ids is None
        else ([classifier_ids] if isinstance(classifier_ids, str) else list(classifier_ids))
    )
    for _ in worker_workbench(folder, owner).classify_iter((), classifier_ids=ids, threshold=threshold):
        pass  # no images: only the checks run (unknown classifier, bad threshold)
    source_col = content_col if content_col in df.columns else FILE_COL
    score = _scorer(folder, owner, ids, threshold, path_col, source_col)
    return df.select(path_col, source_col).mapInArrow(score, ROW_DDL)
