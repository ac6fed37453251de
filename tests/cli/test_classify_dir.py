"""Folder-scale classify: `Workbench.classify_iter` and `workbench classify-dir` (streamed, resumable output)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import DOGS_JPG, TUTORIAL
from workbench.cli.entry import main

RUN_SECONDS = 300


def jpegs(count: int, start: int = 0) -> list[Path]:
    """`count` distinct tutorial JPEGs."""
    files = sorted(p for p in TUTORIAL.glob("*/*.jpg") if p.parent.name != "test")
    return files[start : start + count]


def fill(folder: Path, images: list[Path]) -> None:
    """Copies of `images` under `folder/<class>/`, plus a corrupt JPEG and a text file (not an image)."""
    for path in images:
        (folder / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.parent.name / path.name)
    (folder / "corrupt.jpg").write_bytes(DOGS_JPG.read_bytes()[:2048])
    (folder / "notes.txt").write_text("not an image")


def classify_dir(home: Path, folder: Path, out: Path, cid: str, *extra: str) -> dict:
    """`workbench classify-dir` in a real subprocess; its JSON summary."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "--home",
            str(home),
            "classify-dir",
            str(folder),
            "-c",
            cid,
            "--out",
            str(out),
            "-t",
            "0",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "img/s" in done.stderr  # the tqdm bar
    return json.loads(done.stdout)


def test_classify_iter_streams_an_endless_input(dogs):
    wb, cid = dogs
    endless = itertools.repeat(("dogs.jpg", DOGS_JPG.read_bytes()))
    answers = list(itertools.islice(wb.classify_iter(endless, classifier_ids=cid, chunk_images=4), 6))
    expected = wb.classify(DOGS_JPG, classifier_ids=[cid])["images"][0]["classifiers"]
    assert [a["image"] for a in answers] == ["dogs.jpg"] * 6
    for answer in answers:  # a batch of 4 and a single pass agree to float precision, not bit for bit
        assert scores(answer["classifiers"]) == pytest.approx(scores(expected), abs=1e-5)


def scores(classifiers: list[dict]) -> dict[tuple[str, str], float]:
    return {(c["classifier_id"], k["class"]): k["score"] for c in classifiers for k in c["classes"]}


def test_classify_iter_answers_like_classify_with_an_error_per_bad_image(dogs, tmp_path):
    wb, cid = dogs
    fill(tmp_path / "pics", jpegs(5))
    answers = list(wb.classify_iter(tmp_path / "pics", classifier_ids=[cid, "default"]))
    expected = wb.classify(tmp_path / "pics", classifier_ids=[cid, "default"])["images"]
    assert [a["image"] for a in answers] == [e["image"] for e in expected]  # same names and order; notes.txt left out
    assert [a.get("error") for a in answers] == [e.get("error") for e in expected]
    assert [a["classifiers"] for a in answers] == [e["classifiers"] for e in expected]
    assert answers[0]["image"] == "pics/beagle/" + jpegs(1)[0].name and len(answers[0]["sha256"]) == 64
    skipped: list[str] = []
    rest = list(
        wb.classify_iter(tmp_path / "pics", classifier_ids=cid, skip={answers[0]["sha256"]}, on_skip=skipped.append)
    )
    assert skipped == [answers[0]["image"]] and len(rest) == len(answers) - 1


def test_classify_dir_parquet_resumes_without_redoing_finished_images(dogs, tmp_path):
    wb, cid = dogs
    folder, out = tmp_path / "archive", tmp_path / "results.parquet"
    fill(folder, jpegs(24))
    first = classify_dir(wb.home, folder, out, cid, "--flush-every", "8")
    assert first == {"out": str(out), "classified": 24, "errors": 1, "already_done": 0}
    parts = {p.name: p.read_bytes() for p in out.glob("part-*.parquet")}
    assert len(parts) == 4  # written as it went: every 8 images
    (out / ".tmp-crashed").write_bytes(b"a part a killed run left half written")
    fill(folder, jpegs(8, start=24))  # more images arrive; the first 25 are in the output already
    second = classify_dir(wb.home, folder, out, cid, "--flush-every", "8")
    assert second == {"out": str(out), "classified": 8, "errors": 0, "already_done": 25}
    assert all((out / name).read_bytes() == data for name, data in parts.items())  # finished parts untouched
    frame = pd.read_parquet(out)
    assert len(frame) == 33 and frame["sha256"].is_unique
    assert set(frame["engine"]) == {"onnxruntime"}  # the column and values of Spark's rows, error rows included
    errors = frame[frame["error"].notna()]
    assert list(errors["path"]) == ["archive/corrupt.jpg"] and "not a readable" in errors["error"].iloc[0]
    dogs_row = frame[frame["path"] == "archive/beagle/" + jpegs(1)[0].name].iloc[0]
    [result] = dogs_row["classifiers"]
    expected = wb.classify(jpegs(1)[0], classifier_ids=[cid], threshold=0.0)["images"][0]["classifiers"][0]
    assert result["classifier_id"] == cid
    assert [c["class"] for c in result["classes"]] == [c["class"] for c in expected["classes"]]
    assert [c["score"] for c in result["classes"]] == pytest.approx([c["score"] for c in expected["classes"]], abs=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_classify_dir_text_output_reads_back_and_drops_a_line_cut_by_a_crash(dogs, tmp_path, suffix, capsys):
    wb, cid = dogs
    folder, out = tmp_path / "archive", tmp_path / f"results{suffix}"
    fill(folder, jpegs(6))
    assert main(["--home", str(wb.home), "classify-dir", str(folder), "-c", cid, "--out", str(out)]) == 0
    capsys.readouterr()
    with open(out, "a") as file:
        file.write("archive/beagle/half-written.jpg,0123" if suffix == ".csv" else '{"path": "archive/be')
    fill(folder, jpegs(2, start=6))
    assert main(["--home", str(wb.home), "classify-dir", str(folder), "-c", cid, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["classified"] == 2 and summary["already_done"] == 7
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_json(out, lines=True)
    assert len(frame) == 9 and frame["sha256"].is_unique and "half-written" not in "".join(frame["path"])
    classifiers = frame["classifiers"].map(json.loads) if suffix == ".csv" else frame["classifiers"]
    good = classifiers[frame["error"].isna()]
    assert all(result[0]["classifier_id"] == cid and result[0]["classes"] for result in good)
    assert set(frame["engine"]) == {"onnxruntime"}


def test_classify_dir_writes_each_path_once_follows_linked_folders_and_rows_a_copy(dogs, tmp_path):
    """Issue 24: an empty or oversized file is an error row once (not again on every rerun); a byte-identical
    copy at a new path gets its own row; symlinked sub-folders are walked (a link back up is not)."""
    wb, cid = dogs
    elsewhere, folder, out = tmp_path / "elsewhere", tmp_path / "archive", tmp_path / "results.jsonl"
    fill(elsewhere, jpegs(3))
    folder.mkdir()
    (folder / "linked").symlink_to(elsewhere / "beagle", target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "big.jpg").write_bytes(DOGS_JPG.read_bytes() + bytes(10 * 2**20))  # over the 10 MB image limit
    first = classify_dir(wb.home, folder, out, cid)
    assert first == {"out": str(out), "classified": 3, "errors": 2, "already_done": 0}
    shutil.copyfile(jpegs(1)[0], folder / "copy.jpg")  # the same bytes as archive/linked/<first image>
    second = classify_dir(wb.home, folder, out, cid)
    assert second == {"out": str(out), "classified": 1, "errors": 0, "already_done": 5}
    frame = pd.read_json(out, lines=True)
    assert sorted(frame["path"]) == sorted(
        ["archive/big.jpg", "archive/copy.jpg", "archive/empty.jpg", *(f"archive/linked/{p.name}" for p in jpegs(3))]
    )
    errors = dict(zip(frame["path"], frame["error"], strict=True))
    assert "size limit" in errors["archive/big.jpg"] and isinstance(errors["archive/empty.jpg"], str)
    copy = frame[frame["path"] == "archive/copy.jpg"].iloc[0]
    original = frame[frame["path"] == f"archive/linked/{jpegs(1)[0].name}"].iloc[0]
    assert copy["sha256"] == original["sha256"] and copy["classifiers"] == original["classifiers"]


def test_classify_dir_of_a_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "notes.txt").write_text("not an image")
    with pytest.raises(SystemExit, match="no images under"):
        main(
            [
                "--home",
                str(tmp_path / "home"),
                "classify-dir",
                str(tmp_path / "archive"),
                "-c",
                "default",
                "--out",
                str(tmp_path / "results.jsonl"),
            ]
        )
    assert not (tmp_path / "results.jsonl").exists()
