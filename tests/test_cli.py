"""The `workbench` command: the tutorial via `demo`, JSON on stdout, errors on stderr with exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import DOGS_JPG, TUTORIAL


def workbench(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--home", str(home), *args],
        capture_output=True, text=True, timeout=600,
    )


def json_documents(text: str) -> list:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def test_demo_prints_the_tutorial_answers(tmp_path: Path) -> None:
    done = workbench(tmp_path / "home", "demo")
    assert done.returncode == 0, done.stderr
    created, ready, updated, retrained, classified, hierarchy, *rest = json_documents(done.stdout)
    assert created["status"] == "training" and ready["status"] == "ready"
    assert updated["status"] == "retraining" and retrained["status"] == "ready"
    assert {c["class"] for c in retrained["classes"]} == {"beagle", "husky", "goldenretriever", "dalmatian"}
    custom, general = classified["images"][0]["classifiers"]
    assert custom["classes"][0] == {"class": "goldenretriever", "score": custom["classes"][0]["score"]}
    assert custom["classes"][0]["score"] >= 0.5
    assert general["classifier_id"] == "default"
    breeds = [c for c in hierarchy["images"][0]["classifiers"][0]["classes"] if "/dog/" in c.get("type_hierarchy", "")]
    assert breeds and breeds[0]["type_hierarchy"].startswith("/animal/domestic animal/dog/")
    assert rest[-1] == {"classifiers": []}  # deleted at the end
    assert "embedding" in done.stderr  # the progress bar


def test_cli_create_get_classify_delete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    created = workbench(
        home, "create", "pets",
        "-p", f"beagle={TUTORIAL / 'beagle'}", "-n", str(TUTORIAL / "cats"),
    )
    assert created.returncode == 0, created.stderr
    cid = json.loads(created.stdout)["classifier_id"]
    assert json.loads(workbench(home, "get", cid).stdout)["status"] == "ready"
    answer = json.loads(workbench(home, "classify", str(TUTORIAL / "test" / "4.jpg"), "-c", cid).stdout)
    assert answer["images"][0]["classifiers"][0]["classes"][0]["class"] == "beagle"
    assert workbench(home, "delete", cid).returncode == 0
    missing = workbench(home, "get", cid)
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stdout == ""


def test_cli_errors_are_readable_and_exit_non_zero(tmp_path: Path) -> None:
    home = tmp_path / "home"
    one_set = workbench(home, "create", "dogs", "-p", f"beagle={TUTORIAL / 'beagle'}")
    assert one_set.returncode == 1 and "two example sets" in one_set.stderr
    bad_threshold = workbench(home, "classify", str(DOGS_JPG), "--threshold", "2")
    assert bad_threshold.returncode == 1 and "threshold" in bad_threshold.stderr
    assert workbench(home, "list").stdout.strip().startswith("{")
