"""Fast unit tests of cli.results_files: rows written as they come, read back by path to resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench import InvalidRequest
from workbench.cli.results_files import check_output, cut_partial_line, done_paths, open_writer, result_row

ROWS = [
    {
        "path": "dogs/beagle 1.jpg",
        "sha256": "a" * 64,
        "classifiers": [
            {"classifier_id": "dogs_1", "name": "dogs", "classes": [{"class": "beagle", "score": 0.91}]},
        ],
        "error": None,
        "engine": "onnxruntime",
    },
    {
        "path": "dogs/empty.jpg",
        "sha256": None,
        "classifiers": [],
        "error": "The image file is empty",
        "engine": "onnxruntime",
    },
    {"path": 'odd/"quoted", name\n.png', "sha256": "b" * 64, "classifiers": [], "error": None, "engine": "torch"},
]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_rows_written_in_two_runs_read_back_whole(tmp_path, suffix) -> None:
    out = tmp_path / f"results{suffix}"
    assert done_paths(out) == set()  # first run: nothing yet
    for rows in (ROWS[:2], ROWS[2:]):
        writer = open_writer(out)
        writer.write(rows)
        writer.close()
    assert done_paths(out) == {row["path"] for row in ROWS}
    frame = pd.read_parquet(out) if suffix == ".parquet" else None
    if frame is not None:
        assert list(frame.columns) == ["path", "sha256", "classifiers", "error", "engine"]
        assert frame["classifiers"][0][0]["classes"][0]["class"] == "beagle"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_line_cut_short_by_a_crash_is_dropped_on_resume(tmp_path, suffix) -> None:
    out = tmp_path / f"results{suffix}"
    writer = open_writer(out)
    writer.write(ROWS[:1])
    writer.close()
    with open(out, "a", encoding="utf-8") as file:
        file.write('{"path": "dogs/half-writ')  # the crash
    assert done_paths(out) == {ROWS[0]["path"]}
    writer = open_writer(out)
    writer.write(ROWS[1:2])
    writer.close()
    assert done_paths(out) == {ROWS[0]["path"], ROWS[1]["path"]}
    if suffix == ".jsonl":
        assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == [r["path"] for r in ROWS[:2]]


def test_cut_partial_line_keeps_complete_lines_across_blocks(tmp_path) -> None:
    out = tmp_path / "long.jsonl"
    line = "x" * 100 + "\n"
    out.write_text(line * 3 + "y" * 250)
    cut_partial_line(out, block=64)  # the partial tail spans several blocks
    assert out.read_text() == line * 3
    out.write_text("no newline at all")
    cut_partial_line(out, block=4)
    assert out.read_text() == ""


def test_output_names_are_checked(tmp_path) -> None:
    assert check_output(tmp_path / "r.JSONL") == ".jsonl"
    with pytest.raises(InvalidRequest, match=r"\.parquet, \.csv or \.jsonl"):
        check_output(tmp_path / "r.txt")
    (tmp_path / "r.parquet").write_bytes(b"PAR1")
    with pytest.raises(InvalidRequest, match="folder of parts"):
        check_output(tmp_path / "r.parquet")


def test_result_row_from_an_answer_and_an_error_answer() -> None:
    ok = {"image": "a.jpg", "sha256": "c" * 64, "classifiers": [{"classifier_id": "x"}]}
    assert result_row(ok, "onnxruntime") == {
        "path": "a.jpg",
        "sha256": "c" * 64,
        "classifiers": [{"classifier_id": "x"}],
        "error": None,
        "engine": "onnxruntime",
    }
    bad = {"image": "b.jpg", "error": {"description": "not an image", "error_id": "input_error"}}
    assert result_row(bad, "torch") == {
        "path": "b.jpg",
        "sha256": None,
        "classifiers": [],
        "error": "not an image",
        "engine": "torch",
    }


def test_a_csv_written_before_the_engine_column_is_resumed_in_its_own_columns(tmp_path) -> None:
    out = tmp_path / "results.csv"
    out.write_text('path,sha256,classifiers,error\nold.jpg,,[],"The image file is empty"\n')
    writer = open_writer(out)
    writer.write(ROWS[:1])
    writer.close()
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["path", "sha256", "classifiers", "error"] and len(frame) == 2
    assert done_paths(out) == {"old.jpg", ROWS[0]["path"]}
