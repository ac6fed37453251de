"""A curation killed at any point leaves the previous state serving, and loses nothing.

A real `workbench examples remove` process is SIGKILLed inside the change's transaction, right after
its commit, and in the retraining that follows (`kill_in_curation.py`, deterministic). Killed before
its commit, nothing changed; after it, the change stands, version 1 keeps answering while the
classifier says `retraining`, and the next Workbench on the home takes the training over and trains
version 2 without the removed examples. Version 1's example set and files are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TUTORIAL
from support.sets import SIZES, TRAIN_S, create_small
from workbench import Workbench
from workbench.store import curation
from workbench.store import doctor as dr
from workbench.store.database import Store

from .kill_in_curation import KILL_IN_CURATION_ENV

HELPER = Path(__file__).with_name("kill_in_curation.py")
TEST_IMAGE = TUTORIAL / "test" / "4.jpg"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, embedding_cache: Path) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("killed-curation")
    wb = Workbench(root / "home", embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    return root / "home", create_small(wb, root / "zips")


@pytest.fixture
def home(template, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template[0], tmp_path / "home"))


def killed_remove(home: Path, classifier_id: str, ids: list[int], point: str) -> None:
    """`workbench examples remove` in its own process, SIGKILLed at `point`."""
    done = subprocess.run(
        [sys.executable, str(HELPER), "--home", str(home), "examples", "remove", classifier_id, *map(str, ids)],
        env={**os.environ, KILL_IN_CURATION_ENV: point},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, f"not killed at {point}: {done.stderr[-2000:]}"


def state(home: Path, classifier_id: str) -> dict:
    """What a reader sees, from a fresh store that adopts nothing: status, serving version, versions, example rows."""
    store = Store(home)
    record = store.classifier(classifier_id)
    return {
        "status": record.status,
        "serving": record.serving_version,
        "versions": [v.version for v in store.versions(classifier_id)],
        "rows": store.examples(classifier_id),
    }


def test_killed_before_its_commit_a_curation_changed_nothing(home: Path, template, embedding_cache: Path) -> None:
    cid = template[1]
    before = state(home, cid)
    doomed = [r.example_id for r in before["rows"] if r.class_name == "beagle"][:2]
    killed_remove(home, cid, doomed, "uncommitted")
    assert state(home, cid) == before  # status ready, version 1, every example as it was
    with sqlite3.connect(home / "workbench.db") as db:
        assert db.execute("SELECT COUNT(*) FROM curations").fetchone()[0] == 0
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False)
    assert wb.classify(TEST_IMAGE, classifier_ids=[cid])["images"][0]["classifiers"][0]["classifier_id"] == cid
    assert dr.run_doctor(wb.store).ok
    assert wb.remove_examples(cid, doomed).changed  # the same change goes through afterwards
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready" and len(wb.versions(cid)) == 2


@pytest.mark.parametrize("point", ["committed", "training"])
def test_killed_after_its_commit_version_1_serves_and_the_next_workbench_retrains_without_them(
    home: Path, template, embedding_cache: Path, point: str
) -> None:
    cid = template[1]
    before = state(home, cid)
    doomed = [r.example_id for r in before["rows"] if r.class_name == "beagle"][:2]
    killed_remove(home, cid, doomed, point)
    after = state(home, cid)
    assert (after["status"], after["serving"], after["versions"]) == (
        "retraining",
        1,
        [1],
    )  # the previous version serves
    assert {r.example_id for r in after["rows"] if r.removed_by is not None} == set(doomed)  # the commit stands
    version_1 = Store(home).version(cid, 1)
    kept = [(r.example_id, r.class_name, r.sha256, r.source) for r in curation.version_rows(after["rows"], version_1)]
    assert kept == [
        (r.example_id, r.class_name, r.sha256, r.source) for r in before["rows"]
    ]  # version 1's set is whole
    reader = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, train=False)
    assert reader.classify(TEST_IMAGE, classifier_ids=[cid])["images"][0]["classifiers"][0]["classifier_id"] == cid
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False)  # adopts the dead process's training
    assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    assert [v["version"] for v in wb.versions(cid)] == [1, 2]
    assert wb.versions(cid)[1]["metrics"]["per_class"]["beagle"]["positives"] == SIZES["beagle"] - 2
    assert {e.example_id for e in wb.examples(cid)}.isdisjoint(doomed)
    assert dr.run_doctor(wb.store).ok
