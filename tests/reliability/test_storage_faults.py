"""Storage faults: a private home, a store another process holds locked, a training that meets the lock.

Real SQLite locks taken by a second process (`BEGIN IMMEDIATE` on workbench.db), a real server on
127.0.0.1, and a training stopped at a stage by the Gate listener; no sleeps for synchronisation.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import DOGS_JPG, TUTORIAL, Gate, zip_bytes
from reliability.served_http import VERSION, open_app, served
from support.servers import workbench_command
from workbench import Workbench
from workbench.store.embeddings import EmbeddingCache

BUSY_TIMEOUT_S = "0.3"  # WORKBENCH_STORE_BUSY_TIMEOUT_S here: a locked write gives up in 0.3 s, not 30 s
HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN IMMEDIATE")  # the write lock, held until the test says so on stdin
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
print("released", flush=True)
"""


def small_zip(folder: Path, target: Path, count: int = 10) -> Path:
    """A zip of the first `count` images of a tutorial folder (fast to train on)."""
    images = sorted((TUTORIAL / folder).glob("*.jpg"))[:count]
    target.write_bytes(zip_bytes({image.name: image.read_bytes() for image in images}))
    return target


@contextmanager
def store_locked(home: Path) -> Iterator[subprocess.Popen]:
    """Another process holds workbench.db's write lock (`BEGIN IMMEDIATE`) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home / "workbench.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "locked"  # the holder says when it holds the lock
        yield holder
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_STORE_BUSY_TIMEOUT_S", BUSY_TIMEOUT_S)


@pytest.fixture
def zips(tmp_path: Path) -> dict[str, Path]:
    return {name: small_zip(Path(name), tmp_path / f"{name}.zip") for name in ("beagle", "husky", "dalmatian")}


def test_a_fresh_home_is_private_whatever_the_umask(tmp_path: Path, make_workbench, zips: dict[str, Path]) -> None:
    """workbench.db, embeddings.db (and their -wal/-shm), blobs and heads: files 0600, folders 0700, under umask 000."""
    home = tmp_path / "fresh" / "home"
    old_umask = os.umask(0)
    try:
        wb = make_workbench(home=home)
        created = wb.create_classifier("dogs", {"beagle": zips["beagle"], "husky": zips["husky"]})
        assert wb.wait(created["classifier_id"], timeout=300)["status"] == "ready"
        cache = EmbeddingCache(home / "embeddings.db")  # the home's own cache (the fixture's is shared)
        cache.put_many({}, "backbone")
        with wb.store.transaction() as db:  # open: workbench.db-wal and -shm exist while it is
            db.execute("SELECT 1")
            modes = {
                path.relative_to(tmp_path / "fresh").as_posix(): stat.S_IMODE(path.stat().st_mode)
                for path in [home, *home.rglob("*")]
            }
    finally:
        os.umask(old_umask)
    files = {name: mode for name, mode in modes.items() if not (tmp_path / "fresh" / name).is_dir()}
    folders = {name: mode for name, mode in modes.items() if name not in files}
    assert {"home/workbench.db", "home/workbench.db-wal", "home/workbench.db-shm", "home/embeddings.db"} <= set(files)
    assert any(name.startswith("home/blobs/") for name in files) and any(
        name.startswith("home/heads/") for name in files
    )
    assert {name: oct(mode) for name, mode in files.items() if mode != 0o600} == {}
    assert {name: oct(mode) for name, mode in folders.items() if mode != 0o700} == {}


def test_a_locked_store_answers_503_to_writes_and_200_to_reads(
    short_busy_timeout: None, make_workbench, zips: dict[str, Path]
) -> None:
    """Another process holds the write lock: list, get and classify answer 200; a create a Watson 503, in about
    the busy timeout."""
    wb: Workbench = make_workbench()
    cid = wb.create_classifier("dogs", {"beagle": zips["beagle"], "husky": zips["husky"]})["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    with served(open_app(wb)) as client, store_locked(wb.home):
        listed = client.get("/v3/classifiers", params=VERSION)
        assert listed.status_code == 200, listed.text
        assert [c["classifier_id"] for c in listed.json()["classifiers"]] == [cid]
        one = client.get(f"/v3/classifiers/{cid}", params=VERSION)
        assert one.status_code == 200 and one.json()["status"] == "ready", one.text
        classified = client.post(
            "/v3/classify",
            params=VERSION,
            data={"classifier_ids": cid},
            files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")},
        )
        assert classified.status_code == 200, classified.text
        assert classified.json()["images"][0]["classifiers"][0]["classifier_id"] == cid
        files = {
            f"{name}_positive_examples": (f"{name}.zip", zips[name].read_bytes(), "application/zip")
            for name in ("beagle", "dalmatian")
        }
        started = time.monotonic()
        refused = client.post("/v3/classifiers", params=VERSION, data={"name": "more"}, files=files)
        took_s = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == 503 and "locked" in refused.json()["error"], refused.text
        assert took_s < 20, f"the create waited {took_s:.1f} s for the lock"
    assert [r.classifier_id for r in wb.store.classifiers()] == [cid]  # the refused create left nothing


class Heard(logging.Handler):
    """Sets `event` when a log record's message holds `text` (the training's retry notice)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.event = threading.Event()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.count += 1
            self.event.set()


def test_a_training_that_meets_a_locked_store_retries_and_ends_ready(
    short_busy_timeout: None, make_workbench, zips: dict[str, Path]
) -> None:
    """The store is locked when a retraining commits its version: it retries, v1 serves meanwhile, then v2 is ready."""
    wb: Workbench = make_workbench()
    cid = wb.create_classifier("dogs", {"beagle": zips["beagle"], "husky": zips["husky"]})["classifier_id"]
    assert wb.wait(cid, timeout=300)["status"] == "ready"
    gate = Gate("fitting")
    wb.subscribe(gate)
    heard = Heard("store unavailable at the save")
    jobs_log = logging.getLogger("workbench.jobs.runner")
    jobs_log.addHandler(heard)
    try:
        wb.update_classifier(cid, positive_examples={"dalmatian": zips["dalmatian"]})
        assert gate.reached.wait(300), "the retraining never reached fitting"
        with store_locked(wb.home):
            gate.opened.set()  # fitting goes on, then the save meets the lock
            assert heard.event.wait(60), "the training never met the locked store"
            assert wb.get_classifier(cid)["status"] == "retraining"
            answer = wb.classify(DOGS_JPG, classifier_ids=cid)  # v1 keeps serving
            assert {c["class"] for c in answer["images"][0]["classifiers"][0]["classes"]} <= {"beagle", "husky"}
        record = wb.wait(cid, timeout=300)
    finally:
        jobs_log.removeHandler(heard)
    assert record["status"] == "ready", record
    assert {c["class"] for c in record["classes"]} == {"beagle", "husky", "dalmatian"}
    assert wb.store.classifier(cid).serving_version == 2
    assert heard.count >= 1


def _no_file_may_grow() -> None:
    """In the doctor's process: every write that grows a file fails with EFBIG, as on a full disk (ENOSPC).

    RLIMIT_FSIZE is this test's fault injection: no root, no loop device, exact. SIGXFSZ is ignored
    so the write returns the error instead of killing the process.
    """
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_doctor_on_a_full_disk_reports_it_instead_of_crashing(tmp_path: Path, zips: dict[str, Path]) -> None:
    """`workbench doctor --repair` where no file may grow: a `store_unavailable` finding, exit 1, no traceback."""
    home = tmp_path / "home"
    wb = Workbench(home, train=False, tracking_uri=False, embedding_cache=home / "embeddings.db")
    wb.create_classifier("dogs", {"beagle": zips["beagle"], "husky": zips["husky"]})
    del wb  # its connections are closed: the doctor must create the -wal and -shm files itself
    assert not (home / "workbench.db-shm").exists()
    done = subprocess.run(
        workbench_command(home, "doctor", "--repair"),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_no_file_may_grow,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert [f["kind"] for f in report["findings"]] == ["store_unavailable"], report
    assert "disk" in report["findings"][0]["detail"] and "free disk space" in done.stderr, (report, done.stderr)
