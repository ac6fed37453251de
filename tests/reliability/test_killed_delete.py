"""A delete killed at any file removal loses no image a classifier uses, and what it left is finished later.

Before the fix `Store.delete_classifier` unlinked blobs inside its transaction: killed after a few
unlinks, the rollback brought the classifier back without those images (doctor: `missing_blob`)
and every retraining of it failed. Here two classifiers share the tutorial's beagle and cats images;
a real `workbench delete` process is SIGKILLed right after each of its file removals in turn
(`kill_at_removal.py`, deterministic), and everything is checked on the files on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import TUTORIAL
from support.servers import workbench_command
from workbench import Workbench
from workbench.store import doctor as dr
from workbench.store import findings as fd
from workbench.store.database import Store

from .kill_at_removal import KILL_AT_REMOVAL_ENV, REMOVALS_LINE

HELPER = Path(__file__).with_name("kill_at_removal.py")
UNIQUE_IMAGES = 10  # husky photos only the doomed classifier uses: each is one blob its delete removes
HEADS_FILES = 2  # the doomed classifier's v1 heads and out-of-fold scores
REMOVALS = UNIQUE_IMAGES + HEADS_FILES + 1  # + its heads folder
TRAIN_S = 300.0


def husky_zip(target: Path) -> Path:
    """The first UNIQUE_IMAGES husky photos of the tutorial, as a zip."""
    photos = sorted((TUTORIAL / "husky").iterdir())[:UNIQUE_IMAGES]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for photo in photos:
            archive.write(photo, f"husky/{photo.name}")
    return target


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tutorial_zips, embedding_cache) -> tuple[Path, str, str]:
    """A home with `doomed` (beagle, husky) and `survivor` (beagle, goldenretriever), cats negatives, ready."""
    home = tmp_path_factory.mktemp("template") / "home"
    husky = husky_zip(home.parent / "husky.zip")
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    doomed = wb.create_classifier(
        "doomed", {"beagle": tutorial_zips["beagle"], "husky": husky}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    survivor = wb.create_classifier(
        "survivor",
        {"beagle": tutorial_zips["beagle"], "goldenretriever": tutorial_zips["goldenretriever"]},
        negative_examples=tutorial_zips["cats"],
    )["classifier_id"]
    for cid in (doomed, survivor):
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    return home, doomed, survivor


@pytest.fixture
def home(template, tmp_path: Path) -> Path:
    """A copy of the template home for one test (nothing writes to the template once it is ready)."""
    return Path(shutil.copytree(template[0], tmp_path / "home"))


def delete_killed_at(home: Path, classifier_id: str, removal: int | None) -> subprocess.CompletedProcess:
    """`workbench delete` in its own process, SIGKILLed right after its `removal`th file removal (None: not killed)."""
    env = {**os.environ, KILL_AT_REMOVAL_ENV: str(removal or "")}
    return subprocess.run(
        [sys.executable, str(HELPER), "--home", str(home), "delete", classifier_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def kill_delete(home: Path, classifier_id: str, removal: int) -> None:
    done = delete_killed_at(home, classifier_id, removal)
    assert done.returncode == -signal.SIGKILL, f"the delete was not killed at removal {removal}: {done.stderr[-2000:]}"


def rows(home: Path, query: str) -> list[tuple]:
    with sqlite3.connect(home / "workbench.db", timeout=30) as db:
        return db.execute(query).fetchall()


def classifier_ids(home: Path) -> set[str]:
    return {cid for (cid,) in rows(home, "SELECT classifier_id FROM classifiers")}


def lost_images(home: Path) -> list[str]:
    """Example rows whose image is not on disk with its sha256's content, read from the files themselves."""
    lost = []
    for classifier_id, sha, source in rows(home, "SELECT classifier_id, sha256, source FROM examples"):
        path = home / "blobs" / sha[:2] / sha
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            lost.append(f"{classifier_id}: {source}")
    return lost


def blob_files(home: Path) -> set[str]:
    return {path.name for path in (home / "blobs").glob("*/*") if path.is_file()}


def test_an_unkilled_delete_makes_every_removal_the_kill_points_cover(home: Path, template) -> None:
    done = delete_killed_at(home, template[1], None)
    assert done.returncode == 0, done.stderr
    assert f"{REMOVALS_LINE}{REMOVALS}" in done.stderr
    assert classifier_ids(home) == {template[2]}


@pytest.mark.parametrize("removal", range(1, REMOVALS + 1))
def test_a_delete_killed_at_any_removal_leaves_every_image_in_use_and_the_survivor_retrains(
    home: Path, template, removal: int, tutorial_zips, embedding_cache
) -> None:
    _, doomed, survivor = template
    kill_delete(home, doomed, removal)
    left = classifier_ids(home)
    assert left in ({survivor}, {doomed, survivor})  # deleted, or whole (never half)
    assert lost_images(home) == []  # on the files, before any sweep or repair
    report = dr.run_doctor(Store(home))  # no start-up sweep first
    assert report.of_kind(fd.MISSING_BLOB) == [] and report.of_kind(fd.BROKEN_CLASSIFIER) == []
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False)
    for cid in left:
        wb.update_classifier(cid, positive_examples={"dalmatian": tutorial_zips["dalmatian"]})
        assert wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
        assert len(wb.versions(cid)) == 2
    assert lost_images(home) == []


@pytest.mark.parametrize("removal", range(1, REMOVALS + 1))
def test_doctor_reports_and_finishes_a_delete_killed_at_any_removal(home: Path, template, removal: int) -> None:
    _, doomed, survivor = template
    kill_delete(home, doomed, removal)
    assert classifier_ids(home) == {survivor}  # the commit came first: the delete stands
    report = dr.run_doctor(Store(home))
    pending = report.of_kind(fd.PENDING_REMOVAL)
    assert pending and not report.ok
    assert f"heads/{doomed}/" in {finding.subject for finding in pending}
    assert "workbench doctor --repair" in report.advice()
    repaired = dr.run_doctor(Store(home), repair=True)  # the default grace: a committed delete needs none
    assert repaired.ok, [f for f in repaired.findings if not f.repaired]
    referenced = {sha for (sha,) in rows(home, "SELECT DISTINCT sha256 FROM examples")}
    assert blob_files(home) == referenced  # the doomed classifier's own images are gone, every shared one is kept
    assert not (home / "heads" / doomed).exists()
    assert rows(home, "SELECT * FROM pending_removals") == []
    assert dr.run_doctor(Store(home)).findings == ()


def test_the_start_up_sweep_of_any_workbench_process_finishes_an_interrupted_delete(home: Path, template) -> None:
    _, doomed, survivor = template
    kill_delete(home, doomed, UNIQUE_IMAGES // 2)
    listed = subprocess.run(
        workbench_command(home, "list"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [c["classifier_id"] for c in json.loads(listed.stdout)["classifiers"]] == [survivor]
    assert blob_files(home) == {sha for (sha,) in rows(home, "SELECT DISTINCT sha256 FROM examples")}
    assert not (home / "heads" / doomed).exists()
    assert rows(home, "SELECT * FROM pending_removals") == []


def test_a_create_that_sends_the_images_again_keeps_them_when_the_delete_is_finished(
    home: Path, template, tutorial_zips, embedding_cache
) -> None:
    """The marks stay while a create stores the same husky photos and commits; finishing them re-checks each blob."""
    _, doomed, survivor = template
    wb = Workbench(home, embedding_cache=embedding_cache, tracking_uri=False, resume=False, train=False)
    _ = wb.store  # its start-up sweep runs now, before the crash
    kill_delete(home, doomed, 1)  # one husky blob removed, the others marked
    again = wb.create_classifier(
        "again", {"husky": husky_zip(home.parent / "husky.zip"), "beagle": tutorial_zips["beagle"]}
    )["classifier_id"]
    assert classifier_ids(home) == {survivor, again}
    repaired = dr.run_doctor(wb.store, repair=True)
    kept = [f for f in repaired.of_kind(fd.PENDING_REMOVAL) if f.action == fd.FINISHED_KEPT]
    assert len(kept) == UNIQUE_IMAGES  # every husky blob is in use again, the one the delete removed too
    assert lost_images(home) == []
    assert blob_files(home) == {sha for (sha,) in rows(home, "SELECT DISTINCT sha256 FROM examples")}
