"""`classify-dir`'s output: one row per image in Parquet, CSV or JSON Lines, written as it goes, read back to resume.

A row is `path`, `sha256`, `classifiers` (Watson's per-classifier classes and scores), `error`
(null, or why the image could not be classified) and `engine` (what ran the backbone:
"onnxruntime", or "torch" when the ONNX export failed), as in Spark's rows
(`workbench.spark.classify`). Parquet output is a folder of part files, as Spark writes it
(`pandas.read_parquet` reads the folder): each part is written whole (atomic), so an interrupted
run leaves only complete parts. CSV and JSON Lines are appended line by line; a line cut short by
a crash is dropped when the run resumes. In CSV, `classifiers` is a JSON string.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ..core.atomic import atomic_write_bytes
from ..core.errors import InvalidRequest

COLUMNS = ("path", "sha256", "classifiers", "error", "engine")
FORMATS = (".parquet", ".csv", ".jsonl")
PART_GLOB = "part-*.parquet"
# the same row as Spark SQL DDL (`workbench.spark.classify`'s output, with `path` from the input)
CLASS_DDL = "struct<class:string,score:double,type_hierarchy:string>"
CLASSIFIERS_DDL = f"array<struct<classifier_id:string,name:string,classes:array<{CLASS_DDL}>>>"
ROW_DDL = f"path string, sha256 string, classifiers {CLASSIFIERS_DDL}, error string, engine string"


def arrow_schema():
    """The rows as an Arrow schema (Parquet files, Spark's Arrow batches)."""
    import pyarrow as pa

    one_class = pa.struct([("class", pa.string()), ("score", pa.float64()), ("type_hierarchy", pa.string())])
    classifier = pa.struct([("classifier_id", pa.string()), ("name", pa.string()), ("classes", pa.list_(one_class))])
    return pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("classifiers", pa.list_(classifier)),
            ("error", pa.string()),
            ("engine", pa.string()),
        ]
    )


def result_row(answer: dict, engine: str) -> dict:
    """A `classify_iter` answer as an output row; `engine` is the backbone's engine that scored it."""
    error = answer.get("error")
    return {
        "path": answer.get("image"),
        "sha256": answer.get("sha256"),
        "classifiers": answer.get("classifiers", []),
        "error": error["description"] if error else None,
        "engine": engine,
    }


class ResultsWriter(Protocol):
    def write(self, rows: list[dict]) -> None: ...
    def close(self) -> None: ...


def check_output(path: Path) -> str:
    """The output format from the file name: .parquet, .csv or .jsonl."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidRequest(f"--out {str(path)!r}: name it .parquet, .csv or .jsonl")
    if suffix == ".parquet" and path.is_file():
        raise InvalidRequest(
            f"{str(path)!r} is a file; classify-dir writes Parquet as a folder of parts: pick a new name"
        )
    return suffix


# ---------------------------------------------------------------- reading back (resume)


def cut_partial_line(path: Path, block: int = 65536) -> None:
    """Drops the end of a text output after its last newline: a line a crash left unfinished."""
    if not path.exists():
        return
    with open(path, "rb+") as file:
        end = file.seek(0, 2)
        while end > 0:
            start = max(0, end - block)
            file.seek(start)
            newline = file.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        file.truncate(end)


def _complete_lines(path: Path) -> Iterator[str]:
    """The complete lines of a text output, read one at a time."""
    if not path.exists():
        return
    cut_partial_line(path)
    with open(path, encoding="utf-8", newline="") as file:
        yield from file


def done_paths(path: Path) -> set[str]:
    """The `path` of every row already in the output, error rows included (empty when there is none yet).

    Resuming is by path: an error row (an empty or oversized file) is written once, and a copy of a
    finished image at a new path still gets its own row.
    """
    suffix = check_output(path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        parts = sorted(path.glob(PART_GLOB)) if path.is_dir() else []
        return {name for part in parts for name in pq.read_table(part, columns=["path"]).column(0).to_pylist() if name}
    if suffix == ".csv":
        return {row["path"] for row in csv.DictReader(_complete_lines(path)) if row.get("path")}
    return {json.loads(line).get("path") for line in _complete_lines(path) if line.strip()} - {None}


# ---------------------------------------------------------------- writing


class ParquetParts:
    """Parquet as a folder of part files: each `write` is one part, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.next_part = len(list(folder.glob(PART_GLOB)))

    def write(self, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not rows:
            return
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema()), buffer)
        while (part := self.folder / f"part-{self.next_part:05d}.parquet").exists():
            self.next_part += 1
        atomic_write_bytes(part, buffer.getvalue())
        self.next_part += 1

    def close(self) -> None:
        pass


def _csv_header(path: Path) -> tuple[str, ...]:
    with open(path, encoding="utf-8", newline="") as file:
        return tuple(next(csv.reader(file), COLUMNS))


class TextLines:
    """CSV or JSON Lines, appended and flushed after every batch of rows."""

    def __init__(self, path: Path, suffix: str) -> None:
        cut_partial_line(path)  # a line a crash cut short would run into the first new one
        new = not path.exists() or path.stat().st_size == 0
        # a CSV resumed keeps its header's columns (one written before `engine` existed stays without it)
        columns = COLUMNS if new or suffix != ".csv" else _csv_header(path)
        self.file = open(path, "a", encoding="utf-8", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore") if suffix == ".csv" else None
        if self.csv is not None and new:
            self.csv.writeheader()

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            if self.csv is not None:
                self.csv.writerow({**row, "classifiers": json.dumps(row["classifiers"], ensure_ascii=False)})
            else:
                self.file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def open_writer(path: Path) -> ResultsWriter:
    """A writer appending to `path` (created if missing)."""
    suffix = check_output(path)
    return ParquetParts(path) if suffix == ".parquet" else TextLines(path, suffix)
