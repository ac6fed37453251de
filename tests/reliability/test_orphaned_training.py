"""A training whose process dies while another Workbench stays up is adopted by the survivor, not left `retraining`.

Real processes and real SIGKILLs: an update held mid-embedding, then killed, under a running server,
a `workbench wait` that outlives the trainer, a zombie owner, and a lease left by another host.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import CREATE_CLASSES, DOGS_JPG
from support.servers import workbench_command
from workbench import Workbench
from workbench.server.app import create_app
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings

VERSION = {"version": "2018-03-19"}
ADOPT_WITHIN_S = 60.0  # with the short lease settings below
TRAIN_S = 300.0
SHORT_LEASES = {"WORKBENCH_LEASE_S": "3", "WORKBENCH_LEASE_RENEW_S": "0.5", "WORKBENCH_LEASE_SCAN_S": "0.5"}


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short lease settings for every Workbench built here and every CLI subprocess (they inherit the env)."""
    for name, value in SHORT_LEASES.items():
        monkeypatch.setenv(name, value)


def poll(condition, deadline_s: float, what: str, interval_s: float = 0.02):
    """Polls until `condition()` is truthy (returns it) or the deadline passes (fails with `what`)."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {deadline_s} s waiting for {what}"
        time.sleep(interval_s)


def job_owner(home: Path, cid: str) -> str | None:
    with sqlite3.connect(home / "workbench.db", timeout=30) as db:
        return db.execute("SELECT job_owner FROM classifiers WHERE classifier_id = ?", (cid,)).fetchone()[0]


def cached_embeddings(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


def owned_by(home: Path, cid: str, pid: int) -> bool:
    owner = job_owner(home, cid)
    return owner is not None and owner.split(":")[1] == str(pid)


def custom_classes(wb: Workbench, cid: str) -> set[str]:
    answer = wb.classify(DOGS_JPG, classifier_ids=[cid], threshold=0.0)
    return {c["class"] for c in answer["images"][0]["classifiers"][0]["classes"]}


def cli(home: Path, *args: str) -> list[str]:
    return workbench_command(home, *args)


UPDATE_HELD_MID_EMBEDDING = """
import sys, threading
from pathlib import Path
from workbench import Workbench

home, cid, dalmatian, more_cats, stage_file = sys.argv[1:]

def hold(event):
    if event.stage == "embedding":  # a chunk is embedded and cached, nothing is saved: stay here until killed
        Path(stage_file).write_text(f"{event.done}/{event.total}")
        threading.Event().wait()

wb = Workbench(home)  # the home's own (empty) embedding cache, so it has everything to embed
wb.subscribe(hold)
wb.update_classifier(cid, positive_examples={"dalmatian": dalmatian}, negative_examples=more_cats)
threading.Event().wait()
"""


def test_server_adopts_an_update_killed_mid_embedding(
    short_leases, tmp_path: Path, tutorial_zips, embedding_cache
) -> None:
    home = tmp_path / "home"
    server_wb = Workbench(home, embedding_cache=embedding_cache)
    cid = server_wb.create_classifier(
        "dogs", {c: tutorial_zips[c] for c in CREATE_CLASSES}, negative_examples=tutorial_zips["cats"]
    )["classifier_id"]
    assert server_wb.wait(cid, timeout=TRAIN_S)["status"] == "ready"
    app = create_app(server_wb, settings=ServerSettings(auth=False))
    with ServerThread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        stage_file = tmp_path / "embedding"  # written by the update's training when it holds mid-embedding
        args = [str(home), cid, str(tutorial_zips["dalmatian"]), str(tutorial_zips["more-cats"]), str(stage_file)]
        update = subprocess.Popen([sys.executable, "-c", UPDATE_HELD_MID_EMBEDDING, *args])
        try:
            poll(lambda: update.poll() is not None or stage_file.exists(), TRAIN_S, "the update to start embedding")
            assert update.poll() is None, "the update exited before it was held"
            assert owned_by(home, cid, update.pid) and cached_embeddings(home / "embeddings.db")
        finally:
            if update.poll() is None:
                os.kill(update.pid, signal.SIGKILL)
            update.wait()
        assert len(server_wb.versions(cid)) == 1  # killed before it saved anything

        def settled() -> dict | None:
            record = client.get(f"/v3/classifiers/{cid}", params=VERSION).raise_for_status().json()
            if record["status"] == "ready":
                return record
            assert record["status"] == "retraining"
            assert server_wb.store.classifier(cid).serving_version == 1  # the last good version serves meanwhile
            return None

        assert custom_classes(server_wb, cid) == set(CREATE_CLASSES)
        record = poll(settled, ADOPT_WITHIN_S, "the server to adopt the orphaned training", interval_s=0.2)
    assert "dalmatian" in [c["class"] for c in record["classes"]]
    assert [v["version"] for v in server_wb.versions(cid)] == [1, 2]
    assert custom_classes(server_wb, cid) == {*CREATE_CLASSES, "dalmatian"}


def copy_cache(source: Path, target: Path) -> None:
    """Gives a home the embeddings the session has computed (sqlite's backup: consistent under WAL)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_workbench_wait_adopts_when_the_owner_dies(
    short_leases, tmp_path: Path, tutorial_zips, embedding_cache
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    copy_cache(embedding_cache, home / "embeddings.db")
    storing = Workbench(home, train=False, resume=False)
    cid = storing.create_classifier("pair", {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})[
        "classifier_id"
    ]
    owner = subprocess.Popen(["sleep", "600"])  # a live process owns the training, with a lease that outlasts the test
    with storing.store.transaction() as db:
        storing.store.update_classifier(
            db, cid, job_owner=f"{socket.gethostname()}:{owner.pid}:feedcafe", lease_expires=time.time() + 3600
        )
    waiter = subprocess.Popen(
        cli(home, "wait", cid, "--timeout", str(ADOPT_WITHIN_S)), stdout=subprocess.PIPE, text=True
    )
    try:
        assert storing.get_classifier(cid)["status"] == "training"
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    out, _ = waiter.communicate(timeout=ADOPT_WITHIN_S + 30)
    assert waiter.returncode == 0, out
    assert storing.get_classifier(cid)["status"] == "ready"
    assert len(storing.versions(cid)) == 1


def zombie() -> subprocess.Popen:
    """A child that has exited and is not reaped: its PID still answers kill(0), /proc says state Z."""
    child = subprocess.Popen(["true"])
    poll(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 10, "the zombie")
    return child


def test_a_zombie_owner_counts_as_dead(tmp_path: Path, tutorial_zips, embedding_cache) -> None:
    home = tmp_path / "home"
    storing = Workbench(home, train=False, resume=False, embedding_cache=embedding_cache)
    cid = storing.create_classifier("pair", {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})[
        "classifier_id"
    ]
    child = zombie()
    try:
        with storing.store.transaction() as db:
            storing.store.update_classifier(db, cid, job_owner=f"{socket.gethostname()}:{child.pid}:feedcafe")
        survivor = Workbench(home, embedding_cache=embedding_cache)
        assert survivor.wait(cid, timeout=30)["status"] == "ready"
    finally:
        child.wait()


def test_a_lease_from_another_host_is_adopted_only_once_it_expires(
    short_leases, tmp_path: Path, tutorial_zips, embedding_cache
) -> None:
    home = tmp_path / "home"
    storing = Workbench(home, train=False, resume=False, embedding_cache=embedding_cache)
    cid = storing.create_classifier("pair", {"beagle": tutorial_zips["beagle"], "husky": tutorial_zips["husky"]})[
        "classifier_id"
    ]
    lease_s = 3.0
    expires = time.time() + lease_s
    with storing.store.transaction() as db:
        storing.store.update_classifier(db, cid, job_owner="elsewhere:1:feedcafe", lease_expires=expires)
    survivor = Workbench(home, embedding_cache=embedding_cache)
    _ = survivor.store  # starts the watcher
    assert not survivor.jobs.is_running(cid)  # the other host's lease is still good
    assert survivor.wait(cid, timeout=ADOPT_WITHIN_S)["status"] == "ready"
    assert time.time() >= expires
    assert job_owner(home, cid) is None
